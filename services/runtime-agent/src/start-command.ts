import { access } from "node:fs/promises";
import path from "node:path";
import { detectPythonStartCommand, readUntrustedText, type BuildManifest } from "@slipway/shared";

const exists = (file: string) => access(file).then(() => true, () => false);

/** One line a user can act on, when nothing says how to start the app. */
export const NO_START_COMMAND = "no start command found: add a Procfile `web:` line or set startupCommand";

/**
 * The command that starts the app: the app's `startupCommand`, a Procfile `web:` line, what the
 * build detected (the manifest's `StartupCommand`), then detection here (Oryx's manifests carry
 * no command). Commands run under `sh -c` in `$APP_PATH`, so they may use `$PORT`.
 */
export async function resolveStartCommand(appPath: string, manifest: BuildManifest, appStartupCommand?: string): Promise<string | undefined> {
  if (appStartupCommand) return appStartupCommand;
  const web = await procfileLine(appPath, "web");
  if (web) return web;
  if (manifest.startupCommand) return manifest.startupCommand;

  if (manifest.platformName.includes("python") || manifest.virtualEnvName) {
    const detected = await detectPythonStartCommand(appPath, manifest.virtualEnvName ?? "antenv");
    if (detected) return detected;
  }
  if (await exists(path.join(appPath, "package.json"))) return "npm start";
  return undefined;
}

/** The command to run once per release before it serves: the app's `releaseCommand`, else a Procfile `release:` line. */
export async function resolveReleaseCommand(appPath: string, appReleaseCommand?: string): Promise<string | undefined> {
  return appReleaseCommand || (await procfileLine(appPath, "release"));
}

async function procfileLine(appPath: string, processType: "web" | "release"): Promise<string | undefined> {
  // The app may have rewritten its own directory: no links out, no FIFOs.
  const procfile = (await readUntrustedText(path.join(appPath, "Procfile"))) ?? "";
  return new RegExp(`^${processType}:[ \\t]*(\\S.*)$`, "m").exec(procfile)?.[1]!.trim();
}
