import { createReadStream } from "node:fs";
import { announceRelease, serializeManifest, storageKeys, type Build, type BuildManifest, type Release } from "@slipway/shared";
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
  await announceRelease(ctx, build.app, made.release, outputSha256);
  ctx.logger.info({ app: build.app, buildId: build.id, version: made.release.version, created: made.created }, "release published");
  return made.release;
}
