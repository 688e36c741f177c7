import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rmdir } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { ArchiveLimitError, CorruptArchiveError, extractArchive, extractZip, HashingStream, indexResources, UnsafeArchiveError, type ArchiveLimits, type ObjectStore } from "@slipway/shared";
import { BuildFailure } from "../errors";
import { removeScratch, type BuildContext } from "./build-context";

/**
 * Phase: the source, checked against the sha256 the build was queued with and extracted into a
 * fresh `sourceDir`; its files go to the app's resource cache so the next deploy uploads only
 * what changed.
 */
export async function receiveSource(ctx: BuildContext): Promise<void> {
  const { build, worker } = ctx;
  await removeScratch(ctx);
  await mkdir(ctx.workDir, { recursive: true });
  ctx.line(`Build ${build.id} of app ${build.app}, source ${build.sourceSha256}`);
  const archiveFile = path.join(ctx.workDir, build.sourceKey.endsWith(".zip") ? "source.zip" : "source.tar.gz");
  const summary = await fetchSource(worker.store, { key: build.sourceKey, sha256: build.sourceSha256, archiveFile, sourceDir: ctx.sourceDir }, {
    maxUnpackedBytes: worker.config.MAX_UNPACKED_BYTES,
    maxEntries: worker.config.MAX_SOURCE_FILES,
  });
  ctx.line(`Source extracted: ${summary.entries} entries, ${summary.unpackedBytes} bytes`);
  const folder = await hoistSingleFolder(ctx.sourceDir);
  if (folder) ctx.line(`All of the source is in one folder, ${folder}/ (as GitHub's "Download ZIP" packs it): building from inside it`);
  const indexed = await indexResources(worker.store, build.app, ctx.sourceDir);
  if (indexed.added > 0) ctx.line(`Cached ${indexed.added} new source files (${indexed.bytes} bytes) for later deploys`);
}

interface SourceArchive {
  key: string;
  sha256: string;
  /** Where the archive is downloaded to (outside the source). */
  archiveFile: string;
  sourceDir: string;
}

/** Downloads the source archive (tar.gz or zip), checks its sha256, and extracts it after vetting every entry. */
async function fetchSource(store: ObjectStore, source: SourceArchive, limits: ArchiveLimits) {
  const hashing = new HashingStream();
  await pipeline(await store.getStream(source.key), hashing, createWriteStream(source.archiveFile));
  const sha256 = hashing.digest();
  if (sha256 !== source.sha256) throw new BuildFailure(`source archive ${source.key} has sha256 ${sha256}, expected ${source.sha256}`);
  try {
    return source.key.endsWith(".zip") ? await extractZip(source.archiveFile, source.sourceDir, limits) : await extractArchive(source.archiveFile, source.sourceDir, limits);
  } catch (error) {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
      throw new BuildFailure(`the source archive was refused: ${error.message}`);
    }
    throw error;
  }
}

/** What archivers add beside a folder: not part of the app. */
const ARCHIVER_LEFTOVERS = new Set(["__MACOSX", ".DS_Store"]);

/**
 * A source whose files all sit in one top folder (GitHub's "Download ZIP", `tar -czf app.tgz app/`)
 * is built from inside that folder, as Heroku and Render take such archives: its entries move up
 * one level. Answers the folder's name, or undefined when the source is laid out otherwise.
 */
async function hoistSingleFolder(sourceDir: string): Promise<string | undefined> {
  const entries = (await readdir(sourceDir, { withFileTypes: true })).filter((entry) => !ARCHIVER_LEFTOVERS.has(entry.name));
  const [only] = entries;
  if (entries.length !== 1 || !only!.isDirectory()) return undefined;
  // Renamed first: the folder may hold an entry of its own name (`app/app/`).
  const staging = path.join(sourceDir, ".slipway-single-folder");
  await rename(path.join(sourceDir, only!.name), staging);
  for (const name of await readdir(staging)) await rename(path.join(staging, name), path.join(sourceDir, name));
  await rmdir(staging);
  return only!.name;
}
