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

const allowedTypes = new Set(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

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
export function createArchiveVetter(options: InspectOptions = {}): { sink: Parser; done: Promise<ArchiveSummary> } {
  const symlinks = new Set<string>();
  let entries = 0;
  let unpackedBytes = 0;
  let violation: Error | undefined;

  const check = (entry: ReadEntry) => {
    entries += 1;
    if (options.maxEntries !== undefined && entries > options.maxEntries) {
      throw new ArchiveLimitError(`archive holds more than ${options.maxEntries} entries`);
    }
    if (!allowedTypes.has(entry.type)) throw new UnsafeArchiveError(`entry "${entry.path}" is a ${entry.type}, which is never extracted`);
    const name = memberPath(entry.path);
    for (let parent = path.posix.dirname(name); parent !== "."; parent = path.posix.dirname(parent)) {
      if (symlinks.has(parent)) throw new UnsafeArchiveError(`entry "${entry.path}" lies beneath the symbolic link "${parent}"`);
    }
    if (entry.type === "SymbolicLink") {
      const target = entry.linkpath ?? "";
      if (!options.allowExternalSymlinks && escapesRoot(path.posix.dirname(name), target)) {
        throw new UnsafeArchiveError(`symbolic link "${entry.path}" points outside the archive (${target})`);
      }
      symlinks.add(name);
    } else if (entry.type === "Link") {
      // A hard link's target is an archive member name, relative to the root.
      memberPath(entry.linkpath ?? "");
    } else if (entry.type !== "Directory") {
      unpackedBytes += entry.size ?? 0;
      if (options.maxUnpackedBytes !== undefined && unpackedBytes > options.maxUnpackedBytes) {
        throw new ArchiveLimitError(`archive unpacks to more than ${options.maxUnpackedBytes} bytes`);
      }
    }
  };

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
      else if (entries === 0) reject(new CorruptArchiveError("archive holds no entries"));
      else resolve({ entries, unpackedBytes });
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
