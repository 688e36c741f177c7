import { createWriteStream } from "node:fs";
import { chmod, mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import { CorruptArchiveError, UnsafeArchiveError } from "./errors";
import { createEntryChecker, type ArchiveEntry, type ArchiveSummary, type InspectOptions } from "./inspect";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
/** Longest symbolic link target read from a zip; anything longer is not a path. */
const MAX_LINK_TARGET = 4096;

function open(file: string): Promise<ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: false }, (error, zip) => (error ? reject(error) : resolve(zip))),
  );
}

function readAll(zip: ZipFile): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: Entry[] = [];
    zip.on("entry", (entry: Entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.once("end", () => resolve(entries));
    zip.once("error", reject);
    zip.readEntry();
  });
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (error, stream) => (error ? reject(error) : resolve(stream))));
}

async function readText(zip: ZipFile, entry: Entry): Promise<string> {
  if (entry.uncompressedSize > MAX_LINK_TARGET) throw new UnsafeArchiveError(`symbolic link "${entry.fileName}" has a ${entry.uncompressedSize}-byte target`);
  const chunks: Buffer[] = [];
  for await (const chunk of await openEntry(zip, entry)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Unix mode bits, when the zip was made on a Unix system (made-by host 3). */
const unixMode = (entry: Entry) => ((entry.versionMadeBy >> 8) === 3 ? entry.externalFileAttributes >>> 16 : 0);

/** yauzl refuses unsafe names itself; say so in our own terms. */
function classify(error: unknown): Error {
  const message = (error as Error).message ?? String(error);
  if (/invalid relative path|absolute path|invalid characters in fileName/.test(message)) return new UnsafeArchiveError(`zip entry refused: ${message}`);
  return new CorruptArchiveError(`archive is not a readable zip: ${message}`);
}

/**
 * Extracts a zip file into `destDir` under the same rules as tarballs: every entry (names, link
 * targets, sizes) is vetted before anything is written; Unix modes (the executable bit) and
 * symbolic links are kept.
 */
export async function extractZip(file: string, destDir: string, options: InspectOptions = {}): Promise<ArchiveSummary> {
  let zip: ZipFile;
  try {
    zip = await open(file);
  } catch (error) {
    throw classify(error);
  }
  try {
    let entries: Entry[];
    try {
      entries = await readAll(zip);
    } catch (error) {
      throw classify(error);
    }
    const { check, finish, summary } = createEntryChecker(options);
    const plan: { entry: Entry; name: string; vetted: ArchiveEntry; mode: number }[] = [];
    for (const entry of entries) {
      const mode = unixMode(entry);
      const type = mode & S_IFMT;
      const vetted: ArchiveEntry =
        type === S_IFLNK
          ? { path: entry.fileName, kind: "symlink", linkpath: await readText(zip, entry).catch((e) => Promise.reject(e instanceof UnsafeArchiveError ? e : classify(e))) }
          : entry.fileName.endsWith("/") || type === S_IFDIR
            ? { path: entry.fileName, kind: "directory" }
            : type === 0 || type === S_IFREG
              ? { path: entry.fileName, kind: "file", size: entry.uncompressedSize }
              : { path: entry.fileName, kind: "other", typeName: `special file (mode ${type.toString(8)})` };
      plan.push({ entry, name: check(vetted), vetted, mode });
    }
    if (summary.entries === 0) throw new CorruptArchiveError("archive holds no entries");
    finish();

    await mkdir(destDir, { recursive: true });
    for (const { entry, name, vetted, mode } of plan) {
      const target = path.join(destDir, name);
      if (vetted.kind === "directory") {
        await mkdir(target, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(target), { recursive: true });
      if (vetted.kind === "symlink") {
        await symlink(vetted.linkpath!, target);
        continue;
      }
      try {
        await pipeline(await openEntry(zip, entry), createWriteStream(target, { flags: "wx" }));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new UnsafeArchiveError(`zip holds "${entry.fileName}" twice`);
        throw classify(error);
      }
      if (mode & 0o777) await chmod(target, mode & 0o777);
    }
    return { ...summary };
  } finally {
    zip.close();
  }
}
