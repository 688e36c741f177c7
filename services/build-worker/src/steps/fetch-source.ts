import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { ArchiveLimitError, CorruptArchiveError, extractArchive, extractZip, HashingStream, UnsafeArchiveError, type ArchiveLimits, type ObjectStore } from "@slipway/shared";
import { BuildFailure } from "../errors";

/**
 * Downloads the source archive (tar.gz or zip), checks it is the one the build was queued with,
 * and extracts it into `sourceDir` after vetting every entry.
 */
export async function fetchSource(
  store: ObjectStore,
  sourceKey: string,
  expectedSha256: string,
  archiveFile: string,
  sourceDir: string,
  limits: ArchiveLimits,
) {
  const hashing = new HashingStream();
  await pipeline(await store.getStream(sourceKey), hashing, createWriteStream(archiveFile));
  const sha256 = hashing.digest();
  if (sha256 !== expectedSha256) throw new BuildFailure(`source archive ${sourceKey} has sha256 ${sha256}, expected ${expectedSha256}`);
  try {
    return sourceKey.endsWith(".zip") ? await extractZip(archiveFile, sourceDir, limits) : await extractArchive(archiveFile, sourceDir, limits);
  } catch (error) {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
      throw new BuildFailure(`the source archive was refused: ${error.message}`);
    }
    throw error;
  }
}
