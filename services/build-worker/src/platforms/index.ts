import { BuildFailure } from "../errors";
import { node } from "./node";
import type { Platform } from "./platform";
import { python } from "./python";

export type { Platform, PlatformContext, PlatformResult } from "./platform";

/** Adding a platform: one module, one line here. Earlier entries win ties. */
const platforms: Platform[] = [python, node];

/** Oryx's PLATFORM_NAME values, and the names users also write. */
const ALIASES: Record<string, string> = { python: "python", nodejs: "nodejs", node: "nodejs" };

/**
 * The platform `PLATFORM_NAME` names (for a source with markers of both); else the first with a
 * marker file of its own; else the first with a weak hint.
 */
export async function detectPlatform(sourceDir: string, forced?: string): Promise<Platform> {
  if (forced) {
    const named = platforms.find((platform) => platform.name === ALIASES[forced.trim().toLowerCase()]);
    if (!named) throw new BuildFailure(`PLATFORM_NAME "${forced}" is not a platform this worker builds (${platforms.map((p) => p.name).join(", ")})`);
    return named;
  }
  const detections = await Promise.all(platforms.map(async (platform) => ({ platform, detection: await platform.detect(sourceDir) })));
  const chosen = detections.find((d) => d.detection === "strong") ?? detections.find((d) => d.detection === "weak");
  if (!chosen) throw new BuildFailure(`no supported platform detected in the source (supported: ${platforms.map((p) => p.name).join(", ")})`);
  return chosen.platform;
}
