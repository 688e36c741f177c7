import path from "node:path";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "../platforms/platform";

type Phase = "PRE" | "POST";

/** What hooks run with: the source, the build options that name them, the build's commands. */
export type HookContext = Pick<PlatformContext, "sourceDir" | "options" | "baseEnv" | "run" | "log">;

/**
 * Oryx's build hooks, before and after the platform's own steps: `<PHASE>_BUILD_COMMAND` (a shell
 * command) and `<PHASE>_BUILD_SCRIPT_PATH` (a script in the source), in that order, in the source
 * directory with SOURCE_DIR and DESTINATION_DIR set. Both run in the build's sandbox.
 */
export async function runBuildHooks(phase: Phase, { sourceDir, options, baseEnv, run, log }: HookContext): Promise<void> {
  const env = { ...baseEnv, SOURCE_DIR: sourceDir, DESTINATION_DIR: sourceDir };
  const command = options[`${phase}_BUILD_COMMAND`];
  if (command) {
    log(`Running ${phase}_BUILD_COMMAND: ${command}`);
    await run("/bin/sh", ["-c", command], { env, label: `${phase}_BUILD_COMMAND` });
  }
  const script = options[`${phase}_BUILD_SCRIPT_PATH`];
  if (script) {
    const resolved = path.resolve(sourceDir, script);
    if (resolved !== sourceDir && !resolved.startsWith(`${sourceDir}${path.sep}`)) {
      throw new BuildFailure(`${phase}_BUILD_SCRIPT_PATH "${script}" is outside the source; give a path inside it, like scripts/prebuild.sh`);
    }
    log(`Running ${phase}_BUILD_SCRIPT_PATH: ${script}`);
    // As Oryx: executable scripts run by their own interpreter line, others with sh.
    await run("/bin/sh", ["-c", 'test -f "$1" || { echo "$1: no such file" >&2; exit 127; }; if [ -x "$1" ]; then exec "$1"; else exec /bin/sh "$1"; fi', "hook", resolved], {
      env,
      label: `${phase}_BUILD_SCRIPT_PATH`,
    });
  }
}
