import { createReadStream } from "node:fs";
import { announceRelease, ObjectNotFoundError, outputRecordSha256, parseManifest, serializeManifest, storageKeys, type Build, type BuildManifest, type Release } from "@slipway/shared";
import type { WorkerContext } from "../context";
import { BuildAborted } from "../errors";
import { throwIfAborted, type BuildContext } from "./build-context";
import type { PackedOutput } from "./pack";

/** A build's output as it is in storage. */
export interface BuildOutput {
  manifest: BuildManifest;
  manifestKey: string;
  artifactKey: string;
  /** Set when this attempt packed the output itself: the record to pin (see `outputRecordSha256`). */
  outputRecordSha256?: string;
}

/** Where one build's output lives: the one place both keys are named. */
function outputKeys(build: Build, outputFileName?: string) {
  return { manifestKey: storageKeys.manifest(build.app, build.id), artifactKey: storageKeys.artifact(build.app, build.id, outputFileName) };
}

/**
 * The output of an earlier attempt at this build that got as far as writing its manifest (its
 * worker died while publishing): a retry publishes it instead of building again.
 */
export async function completedOutput(ctx: BuildContext): Promise<BuildOutput | undefined> {
  const { manifestKey } = outputKeys(ctx.build);
  const previous = await ctx.worker.store.getText(manifestKey).then(parseManifest, (error) => {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  });
  if (!previous?.outputSha256) return undefined;
  ctx.line("Build output already complete in storage: publishing it");
  return { manifest: previous, ...outputKeys(ctx.build, previous.outputFileName) };
}

/** Phase: uploads the artifact, then the manifest: the manifest is written last because its presence marks a complete build. */
export async function uploadOutput(ctx: BuildContext, { manifest, artifactFile }: PackedOutput): Promise<BuildOutput> {
  const { store } = ctx.worker;
  const { artifactKey, manifestKey } = outputKeys(ctx.build, manifest.outputFileName);
  await store.putStream(artifactKey, createReadStream(artifactFile), manifest.outputFileName?.endsWith(".zst") ? "application/zstd" : "application/gzip");
  // A build stopped now leaves an artifact without a manifest: never taken for a complete build.
  throwIfAborted(ctx);
  await store.putBuffer(manifestKey, serializeManifest(manifest), "application/toml");
  ctx.line(`Uploaded ${artifactKey} and ${manifestKey}`);
  const pinned = outputRecordSha256(manifest);
  return { manifest, manifestKey, artifactKey, ...(pinned ? { outputRecordSha256: pinned } : {}) };
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
