import path from "node:path";
import { ARCHIVE_EXTENSIONS, packDirectory, sealTree, UnsafeArchiveError, type BuildManifest } from "@slipway/shared";
import { BuildFailure } from "../errors";
import type { PlatformResult } from "../platforms/platform";
import { throwIfAborted, type BuildContext } from "./build-context";

export interface PackedOutput {
  manifest: BuildManifest;
  /** The packed artifact in the work dir, named as the manifest's `outputFileName`. */
  artifactFile: string;
}

/** Phase: the built tree (dependencies included) packed into one artifact within MAX_OUTPUT_BYTES, and its manifest. */
export async function pack(ctx: BuildContext, result: PlatformResult): Promise<PackedOutput> {
  const { config } = ctx.worker;
  const compression = config.ARTIFACT_COMPRESSION;
  const outputFileName = `output${ARCHIVE_EXTENSIONS[compression]}`;
  ctx.line(`Packing the build output (dependencies included) into ${outputFileName} ...`);
  const artifactFile = path.join(ctx.workDir, outputFileName);
  // With the modes every restore gives it: the tree is the worker's own from here on, and an
  // agent extracting a trusted artifact then has nothing to change in it.
  await sealTree(ctx.sourceDir);
  const packed = await packDirectory(ctx.sourceDir, artifactFile, compression).catch((error: Error) => {
    throw error instanceof UnsafeArchiveError ? new BuildFailure(`the build output could never be restored: ${error.message}`) : error;
  });
  ctx.line(`Packed ${outputFileName}: ${packed.bytes} bytes (${packed.unpackedBytes} unpacked, ${packed.entries} entries), sha256 ${packed.sha256}`);
  if (packed.bytes > config.MAX_OUTPUT_BYTES) {
    throw new BuildFailure(`the build output is ${packed.bytes} bytes packed, over MAX_OUTPUT_BYTES (${config.MAX_OUTPUT_BYTES})`);
  }
  throwIfAborted(ctx);

  const { build } = ctx;
  const manifest: BuildManifest = {
    platformName: result.name,
    ...result.manifest,
    ...(result.frameworks.length ? { frameworks: result.frameworks } : {}),
    compressDestinationDir: true,
    operationId: build.id,
    sourceDirectoryInBuildContainer: ctx.sourceDir,
    appName: build.app,
    buildId: build.id,
    sourceSha256: build.sourceSha256,
    outputFileName,
    outputSha256: packed.sha256,
    outputBytes: packed.bytes,
    outputUnpackedBytes: packed.unpackedBytes,
    outputEntryCount: packed.entries,
    outputChunkSha256s: packed.chunkSha256s,
    outputChunkBytes: packed.chunkBytes,
    outputModesSealed: true,
    ...(result.startupCommand ? { startupCommand: result.startupCommand } : {}),
    buildStartedAt: ctx.startedAt,
    buildFinishedAt: new Date().toISOString(),
    other: {},
  };
  return { manifest, artifactFile };
}
