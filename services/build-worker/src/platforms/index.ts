import { BuildFailure } from "../errors";
import type { Platform } from "./platform";
import { python } from "./python";

export type { Platform, PlatformContext, PlatformResult } from "./platform";

/** Detection order: the first platform that recognises the source builds it. */
const platforms: Platform[] = [python];

export async function detectPlatform(sourceDir: string): Promise<Platform> {
  for (const platform of platforms) if (await platform.detect(sourceDir)) return platform;
  throw new BuildFailure(`no supported platform detected in the source (supported: ${platforms.map((p) => p.name).join(", ")})`);
}
