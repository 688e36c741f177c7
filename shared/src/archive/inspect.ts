import { createReadStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Parser, type ReadEntry } from "tar";
import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from "./errors";

export interface ArchiveLimits {
  /** Largest total size of the regular files once unpacked. */
  maxUnpackedBytes?: number;
  /** Most entries (files, directories, links) the archive may hold. */
  maxEntries?: number;
}

export interface InspectOptions extends ArchiveLimits {
  /**
   * Whether symbolic links may point outside the archive root. A build artifact needs it (a
   * virtualenv's `bin/python` points at the interpreter); an uploaded source never does.
   */
  allowExternalSymlinks?: boolean;
}

export interface ArchiveSummary {
  entries: number;
  unpackedBytes: number;
}

/** Normalises an archive member name, or explains why it can never be extracted safely. */
function memberPath(name: string): string {
  if (name.includes("\0")) throw new UnsafeArchiveError(`entry name contains a NUL byte`);
  if (path.posix.isAbsolute(name) || /^[A-Za-z]:/.test(name)) throw new UnsafeArchiveError(`entry "${name}" has an absolute path`);
  const normalized = path.posix.normalize(name).replace(/\/+$/, "");
  if (normalized === ".." || normalized.startsWith("../")) throw new UnsafeArchiveError(`entry "${name}" escapes the archive root`);
  return normalized === "" ? "." : normalized;
}

function escapesRoot(fromDir: string, target: string): boolean {
  if (path.posix.isAbsolute(target)) return true;
  const resolved = path.posix.normalize(path.posix.join(fromDir, target));
  return resolved === ".." || resolved.startsWith("../");
}

/**
 * A writable that parses a tar or tar.gz stream without writing anything, and fails if any entry
 * could land outside the extraction root: absolute or `..` names, hard links out of the root,
 * symbolic links out of the root (unless allowed), entries placed beneath a symbolic link (which
 * would write through it), and device or FIFO entries. `done` settles when the stream has ended:
 * with a summary, or with UnsafeArchiveError, ArchiveLimitError or (garbled bytes) CorruptArchiveError.
 */
export type EntryKind = "file" | "directory" | "symlink" | "hardlink" | "other";

export interface ArchiveEntry {
  path: string;
  kind: EntryKind;
  /** What a link points at. */
  linkpath?: string;
  size?: number;
  /** The format's own name for the type, for messages. */
  typeName?: string;
}

/**
 * The rules every archive format's entries are held to, entry by entry in archive order; throws
 * on the first entry that breaks one. Answers the running summary.
 */
export function createEntryChecker(options: InspectOptions = {}) {
  const symlinks = new Set<string>();
  const summary: ArchiveSummary = { entries: 0, unpackedBytes: 0 };
  const check = (entry: ArchiveEntry): string => {
    summary.entries += 1;
    if (options.maxEntries !== undefined && summary.entries > options.maxEntries) {
      throw new ArchiveLimitError(`archive holds more than ${options.maxEntries} entries`);
    }
    if (entry.kind === "other") throw new UnsafeArchiveError(`entry "${entry.path}" is a ${entry.typeName ?? "special file"}, which is never extracted`);
    const name = memberPath(entry.path);
    for (let parent = path.posix.dirname(name); parent !== "."; parent = path.posix.dirname(parent)) {
      if (symlinks.has(parent)) throw new UnsafeArchiveError(`entry "${entry.path}" lies beneath the symbolic link "${parent}"`);
    }
    if (entry.kind === "symlink") {
      const target = entry.linkpath ?? "";
      if (!options.allowExternalSymlinks && escapesRoot(path.posix.dirname(name), target)) {
        throw new UnsafeArchiveError(`symbolic link "${entry.path}" points outside the archive (${target})`);
      }
      symlinks.add(name);
    } else if (entry.kind === "hardlink") {
      // A hard link's target is an archive member name, relative to the root.
      memberPath(entry.linkpath ?? "");
    } else if (entry.kind === "file") {
      summary.unpackedBytes += entry.size ?? 0;
      if (options.maxUnpackedBytes !== undefined && summary.unpackedBytes > options.maxUnpackedBytes) {
        throw new ArchiveLimitError(`archive unpacks to more than ${options.maxUnpackedBytes} bytes`);
      }
    }
    return name;
  };
  return { check, summary };
}

const tarKinds: Record<string, EntryKind> = {
  File: "file",
  OldFile: "file",
  ContiguousFile: "file",
  Directory: "directory",
  SymbolicLink: "symlink",
  Link: "hardlink",
};

/**
 * A writable that parses a tar or tar.gz stream without writing anything, and fails if any entry
 * could land outside the extraction root: absolute or `..` names, hard links out of the root,
 * symbolic links out of the root (unless allowed), entries placed beneath a symbolic link (which
 * would write through it), and device or FIFO entries. `done` settles when the stream has ended:
 * with a summary, or with UnsafeArchiveError, ArchiveLimitError or (garbled bytes) CorruptArchiveError.
 */
export function createArchiveVetter(options: InspectOptions = {}): { sink: Parser; done: Promise<ArchiveSummary> } {
  const { check: checkEntry, summary } = createEntryChecker(options);
  let violation: Error | undefined;
  const check = (entry: ReadEntry) =>
    checkEntry({ path: entry.path, kind: tarKinds[entry.type] ?? "other", linkpath: entry.linkpath, size: entry.size, typeName: entry.type });

  const sink: Parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      entry.resume();
      if (violation) return;
      try {
        check(entry);
      } catch (error) {
        violation = error as Error;
        sink.abort(violation);
      }
    },
  });

  const done = new Promise<ArchiveSummary>((resolve, reject) => {
    sink.on("error", (error: Error) => {
      reject(violation ?? new CorruptArchiveError(`archive is not a readable tar.gz: ${error.message}`));
    });
    sink.on("end", () => {
      if (violation) reject(violation);
      else if (summary.entries === 0) reject(new CorruptArchiveError("archive holds no entries"));
      else resolve({ ...summary });
    });
  });
  done.catch(() => undefined);
  return { sink, done };
}

/** Reads a whole archive file through `createArchiveVetter`, writing nothing. */
export async function inspectArchive(file: string, options: InspectOptions = {}): Promise<ArchiveSummary> {
  const { sink, done } = createArchiveVetter(options);
  await pipeline(createReadStream(file), sink).catch(() => undefined);
  return done;
}
