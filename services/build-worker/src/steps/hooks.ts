import { stat } from "node:fs/promises";
import path from "node:path";
import { BuildFailure } from "../errors";
import type { PlatformContext, PlatformResult } from "../platforms/platform";

type Phase = "PRE" | "POST";

/** What hooks run with: the source, the build options that name them, the build's commands. */
export type HookContext = Pick<PlatformContext, "sourceDir" | "options" | "baseEnv" | "run" | "log">;

/**
 * Oryx's build hooks, one per phase, before and after the platform's own steps, run as Oryx runs
 * them: `<PHASE>_BUILD_SCRIPT_PATH` (a script in the source) wins over `<PHASE>_BUILD_COMMAND`;
 * a command naming a file in the source runs that file (made executable, as Oryx does; one
 * without an interpreter line runs with bash), anything else runs as a bash command. Both run in
 * the source directory with SOURCE_DIR and DESTINATION_DIR set and, after the build, with the
 * app's virtualenv active (Oryx's post-build runs in the shell that activated it), so a
 * `manage.py` step imports what requirements.txt installed. All of it in the build's sandbox.
 */
export async function runBuildHooks(phase: Phase, { sourceDir, options, baseEnv, run, log }: HookContext, built?: PlatformResult): Promise<void> {
  const scriptOption = `${phase}_BUILD_SCRIPT_PATH`;
  const commandOption = `${phase}_BUILD_COMMAND`;
  const script = options[scriptOption];
  const command = options[commandOption];
  if (!script && !command) return;
  const env = { ...baseEnv, SOURCE_DIR: sourceDir, DESTINATION_DIR: sourceDir, ...activated(sourceDir, baseEnv, built) };
  if (script) {
    if (command) log(`${scriptOption} is set: ${commandOption} is not run (Oryx runs one of them, the script first)`);
    const file = await fileInSource(sourceDir, script);
    if (file === "outside") throw new BuildFailure(`${scriptOption} "${script}" is outside the source; give a path inside it, like scripts/prebuild.sh`);
    if (!file) throw new BuildFailure(`${scriptOption} "${script}" is not a file in the source; give the path of a script in it, like scripts/prebuild.sh`);
    log(`Running ${scriptOption}: ${script}`);
    await run("/bin/bash", ["-c", RUN_SCRIPT, "hook", file], { env, label: scriptOption });
    return;
  }
  const file = await fileInSource(sourceDir, command!);
  log(`Running ${commandOption}: ${command}${typeof file === "string" ? " (a script in the source)" : ""}`);
  if (typeof file === "string") await run("/bin/bash", ["-c", RUN_SCRIPT, "hook", file], { env, label: commandOption });
  else await run("/bin/bash", ["-c", command!], { env, label: commandOption });
}

/** Inside the sandbox, as the build's own user: made executable where it can be, else read by bash. */
const RUN_SCRIPT = 'if [ ! -x "$1" ] && ! chmod +x "$1" 2>/dev/null; then exec /bin/bash "$1"; fi; exec "$1"';

/** The absolute path of the regular file `name` names in the source; "outside" when it names a path out of it. */
async function fileInSource(sourceDir: string, name: string): Promise<string | "outside" | undefined> {
  const resolved = path.resolve(sourceDir, name.trim());
  if (resolved !== sourceDir && !resolved.startsWith(`${sourceDir}${path.sep}`)) return "outside";
  // Read by the worker, so followed only to learn that it is a file; it runs in the sandbox.
  return (await stat(resolved).then((info) => info.isFile(), () => false)) ? resolved : undefined;
}

/** The virtualenv the build made, active as `source antenv/bin/activate` makes it. */
function activated(sourceDir: string, baseEnv: Record<string, string>, built: PlatformResult | undefined): Record<string, string> {
  const venvName = built?.manifest.virtualEnvName;
  if (!venvName) return {};
  const venv = path.join(sourceDir, venvName);
  return { VIRTUAL_ENV: venv, PATH: `${venv}/bin:${baseEnv.PATH ?? ""}` };
}
