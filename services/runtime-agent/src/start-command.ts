import { access } from "node:fs/promises";
import path from "node:path";
import { detectPythonStartCommand, readUntrustedText, type BuildManifest } from "@slipway/shared";

const exists = (file: string) => access(file).then(() => true, () => false);

/**
 * The command that starts the app, in DESIGN.md's order: the app's `startupCommand`, the
 * manifest's `StartupCommand`, a Procfile `web:` line, then detection. Commands run under
 * `sh -c` in `$APP_PATH`, so they may use `$PORT`.
 */
export async function resolveStartCommand(appPath: string, manifest: BuildManifest, appStartupCommand?: string): Promise<string | undefined> {
  if (appStartupCommand) return appStartupCommand;
  if (manifest.startupCommand) return manifest.startupCommand;
  // The app may have rewritten its own directory: no links out, no FIFOs.
  const procfile = (await readUntrustedText(path.join(appPath, "Procfile"))) ?? "";
  const web = /^web:\s*(.+)$/m.exec(procfile);
  if (web) return web[1]!.trim();

  if (manifest.platformName.includes("python") || manifest.virtualEnvName) {
    const detected = await detectPythonStartCommand(appPath, manifest.virtualEnvName ?? "antenv");
    if (detected) return detected;
  }
  if (await exists(path.join(appPath, "package.json"))) return "npm start";
  return undefined;
}
