import { loadBuildOptions } from "../build-options";
import { detectPlatform } from "../platforms/index";
import type { Platform } from "../platforms/platform";
import type { BuildContext } from "./build-context";

export interface Detected {
  /** Build options: the source's build.env overridden by the app's buildEnv. */
  options: Record<string, string>;
  platform: Platform;
  /** The app's own startupCommand as the build starts (it wins over what the build detects). */
  startupCommand?: string;
}

/** Phase: the build options, and the platform that builds the source (PLATFORM_NAME, else marker files). */
export async function detect(ctx: BuildContext): Promise<Detected> {
  const appRecord = await ctx.worker.apps.get(ctx.build.app);
  const options = await loadBuildOptions(ctx.sourceDir, appRecord?.buildEnv ?? {}, ctx.line);
  const platform = await detectPlatform(ctx.sourceDir, options.PLATFORM_NAME);
  ctx.line(options.PLATFORM_NAME ? `Platform: ${platform.name} (PLATFORM_NAME)` : `Detected platform: ${platform.name}`);
  return { options, platform, ...(appRecord?.startupCommand ? { startupCommand: appRecord.startupCommand } : {}) };
}
