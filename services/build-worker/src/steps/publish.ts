import { createReadStream } from "node:fs";
import {
  RELEASE_CHANNEL,
  serializeManifest,
  storageKeys,
  type Build,
  type BuildManifest,
  type CurrentReleasePointer,
  type Release,
  type ReleaseEvent,
} from "@slipway/shared";
import type { WorkerContext } from "../context";
import { BuildAborted } from "../errors";

/** Uploads the artifact, then the manifest: the manifest is written last because its presence marks a complete build. */
export async function uploadBuildOutput(ctx: WorkerContext, build: Build, artifactFile: string, manifest: BuildManifest, signal: AbortSignal) {
  const artifactKey = storageKeys.artifact(build.app, build.id, manifest.outputFileName);
  await ctx.store.putStream(artifactKey, createReadStream(artifactFile), manifest.outputFileName?.endsWith(".zst") ? "application/zstd" : "application/gzip");
  // A build stopped now leaves an artifact without a manifest: never taken for a complete build.
  if (signal.aborted) throw signal.reason;
  const manifestKey = storageKeys.manifest(build.app, build.id);
  await ctx.store.putBuffer(manifestKey, serializeManifest(manifest), "application/toml");
  return { artifactKey, manifestKey };
}

/**
 * Creates the build's release (at most once per build, however often this runs), writes the
 * app's current-release pointer to storage and tells the instances.
 */
export async function publishRelease(ctx: WorkerContext, build: Build, outputSha256: string): Promise<Release> {
  const made = await ctx.releases.create(build.app, build.id, "build");
  if (!made) throw new BuildAborted("canceled", "the build was canceled before its release was made");
  const { release, created } = made;
  const pointer: CurrentReleasePointer = { version: release.version, buildId: release.buildId, sha256: outputSha256, createdAt: release.createdAt };
  // A retry must not move the pointer back if a newer release was published meanwhile.
  const current = await ctx.releases.current(build.app);
  if (!current || current.version === release.version) {
    await ctx.store.putBuffer(storageKeys.currentRelease(build.app), JSON.stringify(pointer), "application/json");
  }
  const event: ReleaseEvent = { app: build.app, version: release.version, buildId: build.id };
  await ctx.redis.publish(RELEASE_CHANNEL, JSON.stringify(event));
  ctx.logger.info({ app: build.app, buildId: build.id, version: release.version, created }, "release published");
  return release;
}
