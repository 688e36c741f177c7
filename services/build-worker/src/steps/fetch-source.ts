import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { ArchiveLimitError, CorruptArchiveError, extractArchive, HashingStream, UnsafeArchiveError, type ObjectStore } from "@slipway/shared";
import { BuildFailure } from "../errors";

/** Largest source tree a build will unpack; a zip bomb fails the build instead of filling the disk. */
const SOURCE_LIMITS = { maxUnpackedBytes: 2 * 1024 * 1024 * 1024, maxEntries: 200_000 };

/**
 * Downloads the source archive, checks it is the one the build was queued with, and extracts it
 * into `sourceDir` after vetting every entry.
 */
export async function fetchSource(store: ObjectStore, sourceKey: string, expectedSha256: string, archiveFile: string, sourceDir: string) {
  const hashing = new HashingStream();
  await pipeline(await store.getStream(sourceKey), hashing, createWriteStream(archiveFile));
  const sha256 = hashing.digest();
  if (sha256 !== expectedSha256) throw new BuildFailure(`source archive ${sourceKey} has sha256 ${sha256}, expected ${expectedSha256}`);
  try {
    return await extractArchive(archiveFile, sourceDir, SOURCE_LIMITS);
  } catch (error) {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
      throw new BuildFailure(`the source archive was refused: ${error.message}`);
    }
    throw error;
  }
}
