import path from "node:path";
import type { BuildManifest } from "@slipway/shared";
import { RestoreError } from "./restore";

/**
 * The Node tools a build shipped in its output (another Node than the host's, npm, Yarn, pnpm),
 * named by the manifest's NodeBinDir relative to the release: first on the app's PATH, so the app
 * runs with what it was built with whatever this host has.
 */
export function withShippedNodeTools(env: Record<string, string>, appPath: string, manifest: BuildManifest): Record<string, string> {
  const dir = manifest.nodeBinDir;
  if (!dir) return env;
  const full = path.resolve(appPath, dir);
  if (path.isAbsolute(dir) || !full.startsWith(`${appPath}${path.sep}`)) throw new RestoreError(`the manifest's NodeBinDir "${dir}" is not a directory of the release`);
  return { ...env, PATH: `${full}:${env.PATH ?? ""}` };
}
