import type { LayerCache, Platform, PlatformContext, PlatformResult } from "../platforms/platform";
import type { BuildSandbox } from "../sandbox";
import type { ToolSpec } from "../tools";
import { throwIfAborted, type BuildContext } from "./build-context";
import type { BuildCommands } from "./build-sandbox";
import { runBuildHooks } from "./hooks";
import { warnOfLegacyPaths } from "./legacy-paths";

/** What the build phase needs from the phases before it. */
export interface BuildInputs {
  platform: Platform;
  options: Record<string, string>;
  sandbox: BuildSandbox;
  commands: BuildCommands;
  cache: LayerCache;
  /** The app's own startupCommand, when it has one. */
  startupCommand?: string;
}

/** Phase: PRE_BUILD hooks, the platform's own build (install, build scripts, start command), POST_BUILD hooks. */
export async function buildApp(ctx: BuildContext, inputs: BuildInputs): Promise<PlatformResult> {
  const { worker } = ctx;
  const { sandbox, commands } = inputs;
  const tool = async (spec: ToolSpec) => {
    const dir = await worker.tools.ensure(spec, ctx.line, ctx.signal);
    sandbox.allowReading(dir);
    return dir;
  };
  const platformContext: PlatformContext = {
    sourceDir: ctx.sourceDir,
    baseEnv: commands.baseEnv,
    options: inputs.options,
    cache: inputs.cache,
    tool,
    allowReading: (dir) => sandbox.allowReading(dir),
    toolchains: { pythonInstallsDir: worker.config.PYTHON_INSTALLS_DIR },
    phase: (name, work) => ctx.phases.time(name, work),
    log: ctx.line,
    run: commands.run,
    ...(inputs.startupCommand ? { startupCommand: inputs.startupCommand } : {}),
  };
  const { phases } = ctx;
  await phases.time("hooks", () => runBuildHooks("PRE", platformContext));
  const result = await phases.time("install", () => inputs.platform.build(platformContext));
  await phases.time("hooks", () => runBuildHooks("POST", platformContext, result));
  await warnOfLegacyPaths(ctx.sourceDir, inputs.startupCommand, ctx.line);
  throwIfAborted(ctx);
  return result;
}
