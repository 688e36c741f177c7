import { BuildFailure } from "../errors";
import { node } from "./node";
import type { Platform } from "./platform";
import { python } from "./python";

export type { Platform, PlatformContext, PlatformResult } from "./platform";

/** Adding a platform: one module, one line here. Earlier entries win ties. */
const platforms: Platform[] = [python, node];

/** The first platform with a marker file of its own; else the first with a weak hint. */
export async function detectPlatform(sourceDir: string): Promise<Platform> {
  const detections = await Promise.all(platforms.map(async (platform) => ({ platform, detection: await platform.detect(sourceDir) })));
  const chosen = detections.find((d) => d.detection === "strong") ?? detections.find((d) => d.detection === "weak");
  if (!chosen) throw new BuildFailure(`no supported platform detected in the source (supported: ${platforms.map((p) => p.name).join(", ")})`);
  return chosen.platform;
}
