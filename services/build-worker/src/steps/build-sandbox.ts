import type { WorkerConfig } from "@slipway/shared";
import { sandboxEnvironment } from "@slipway/shared/sandbox";
import type { PlatformContext } from "../platforms/platform";
import { PASS_THROUGH, prepareBuildSandbox, runCommand, type BuildSandbox } from "../sandbox";
import type { BuildContext } from "./build-context";

/** Phase: the sandbox every build command runs in, owning the extracted source. */
export async function enterSandbox(ctx: BuildContext): Promise<BuildSandbox> {
  const sandbox = await prepareBuildSandbox(ctx.worker.config, ctx.build.id, ctx.sourceDir, ctx.worker.sandboxResolvConf);
  await sandbox.own(ctx.sourceDir);
  ctx.line(sandbox.mode === "on" ? `Build commands run sandboxed as uid ${sandbox.spec.uid}` : "Build commands run WITHOUT a sandbox (SANDBOX=off)");
  return sandbox;
}

/** The environment every build command starts from: the sandbox's PATH and HOME, index settings, nothing of Slipway's own. */
export function buildEnvironment(config: WorkerConfig, sandbox: Pick<BuildSandbox, "path" | "home">, host: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env = sandboxEnvironment(sandbox, host);
  for (const key of PASS_THROUGH) {
    const value = config[key] ?? host[key];
    if (value) env[key] = value;
  }
  return env;
}

/** How the build runs commands: in its sandbox, from the source, logged, stopped with the build. */
export interface BuildCommands {
  baseEnv: Record<string, string>;
  run: PlatformContext["run"];
}

export function sandboxCommands(ctx: BuildContext, sandbox: BuildSandbox, options: Record<string, string>): BuildCommands {
  // Build options are the build's environment too, as in Oryx; Slipway's own secrets never are.
  const baseEnv = { ...buildEnvironment(ctx.worker.config, sandbox), ...options };
  const run: PlatformContext["run"] = (command, args, runOptions = {}) =>
    runCommand(command, args, sandbox, {
      cwd: runOptions.cwd ?? ctx.sourceDir,
      env: runOptions.env ?? baseEnv,
      label: runOptions.label ?? command,
      onLine: runOptions.watch
        ? (line) => {
            ctx.line(line);
            runOptions.watch!(line);
          }
        : ctx.line,
      signal: ctx.signal,
    });
  return { baseEnv, run };
}
