import { createReadStream } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Parser, type ReadEntry } from "tar";
import { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from "./errors";
import { LinkTree, type Resolution } from "./links";

export interface ArchiveLimits {
  /** Largest total size of the regular files once unpacked. */
  maxUnpackedBytes?: number;
  /** Most entries (files, directories, links) the archive may hold. */
  maxEntries?: number;
  /** Where each limit comes from ("MAX_RESTORE_BYTES"), named when an archive goes past it. */
  limitNames?: { unpackedBytes?: string; entries?: string };
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

/** Longest link target any entry may have: PATH_MAX, past which the kernel refuses to create the link. */
const MAX_LINK_TARGET = 4096;

/** Normalises an archive member name, or explains why it can never be extracted safely. */
function memberPath(name: string): string {
  if (name.includes("\0")) throw new UnsafeArchiveError(`entry name contains a NUL byte`);
  if (path.posix.isAbsolute(name) || /^[A-Za-z]:/.test(name)) throw new UnsafeArchiveError(`entry "${name}" has an absolute path`);
  const normalized = path.posix.normalize(name).replace(/\/+$/, "");
  if (normalized === ".." || normalized.startsWith("../")) throw new UnsafeArchiveError(`entry "${name}" escapes the archive root`);
  // Lexically "a/../b" is "b", but on disk "a/.." goes wherever a link "a" leads; GNU tar and
  // yauzl refuse such names too.
  if (name.split("/").includes("..")) throw new UnsafeArchiveError(`entry "${name}" has a ".." component`);
  return normalized === "" ? "." : normalized;
}

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

function describe(resolution: Exclude<Resolution, { path: string }>): string {
  return "loop" in resolution ? "goes through too many symbolic links" : `leads outside the archive (${resolution.outside})`;
}

/**
 * The rules every archive format's entries are held to, entry by entry in archive order: `check`
 * throws on the first entry that breaks one and answers its normalised name; `finish` throws if
 * the links, as they stand once every entry is in, lead out of the root. Every link is resolved
 * through the links before it, as on disk: `d -> .` then `f -> d/d/../..` leaves the root
 * although each target on its own looks inside.
 */
export function createEntryChecker(options: InspectOptions = {}) {
  const links = new LinkTree();
  const summary: ArchiveSummary = { entries: 0, unpackedBytes: 0 };
  const limitName = (name: string | undefined) => (name ? ` (${name})` : "");

  /** `subject` names the link in the refusal. */
  const checkLink = (name: string, target: string, subject = `symbolic link "${name}"`) => {
    if (options.allowExternalSymlinks) return;
    const resolution = links.resolve(path.posix.dirname(name), target);
    if (!("path" in resolution)) throw new UnsafeArchiveError(`${subject} ${describe(resolution)}`);
  };

  const check = (entry: ArchiveEntry): string => {
    summary.entries += 1;
    if (options.maxEntries !== undefined && summary.entries > options.maxEntries) {
      throw new ArchiveLimitError(`archive holds more than ${options.maxEntries} entries${limitName(options.limitNames?.entries)}`);
    }
    if (entry.kind === "other") throw new UnsafeArchiveError(`entry "${entry.path}" is a ${entry.typeName ?? "special file"}, which is never extracted`);
    const name = memberPath(entry.path);
    if (name === "." && entry.kind !== "directory") throw new UnsafeArchiveError(`entry "${entry.path}" is the archive root, which can only be a directory`);
    const above = links.linkAbove(name);
    if (above) throw new UnsafeArchiveError(`entry "${entry.path}" lies beneath the symbolic link "${above}"`);
    if (entry.kind !== "symlink" && links.targetOf(name) !== undefined) throw new UnsafeArchiveError(`entry "${entry.path}" would replace the symbolic link of the same name`);
    if (entry.kind === "symlink") {
      const target = entry.linkpath ?? "";
      if (target === "" || target.includes("\0") || target.length > MAX_LINK_TARGET) {
        throw new UnsafeArchiveError(`symbolic link "${entry.path}" has an unusable target (${target.length} bytes)`);
      }
      checkLink(name, target);
      links.set(name, target);
    } else if (entry.kind === "hardlink") {
      // A hard link's target is an archive member name, relative to the root.
      const linked = memberPath(entry.linkpath ?? "");
      const linkedAbove = links.linkAbove(linked);
      if (linkedAbove) throw new UnsafeArchiveError(`hard link "${entry.path}" reaches its target through the symbolic link "${linkedAbove}"`);
      // link(2) does not follow a symbolic link: it makes a second link with the same target
      // text, which leads elsewhere from another directory.
      const target = links.targetOf(linked);
      if (target !== undefined) {
        checkLink(name, target, `hard link "${entry.path}" (to the symbolic link "${linked}")`);
        links.set(name, target);
      }
    } else if (entry.kind === "file") {
      summary.unpackedBytes += entry.size ?? 0;
      if (options.maxUnpackedBytes !== undefined && summary.unpackedBytes > options.maxUnpackedBytes) {
        throw new ArchiveLimitError(`archive unpacks to more than ${options.maxUnpackedBytes} bytes${limitName(options.limitNames?.unpackedBytes)}`);
      }
    }
    return name;
  };

  // A later link can change where an earlier one leads (`a -> s/b/../..`, then `s/b -> .`).
  const finish = () => {
    for (const [name, target] of links.links()) checkLink(name, target);
  };
  return { check, finish, summary };
}

const tarKinds: Record<string, EntryKind> = {
  File: "file",
  OldFile: "file",
  ContiguousFile: "file",
  Directory: "directory",
  SymbolicLink: "symlink",
  Link: "hardlink",
};

const GLOBAL_KEYS_REFUSED = ["path", "linkpath", "size"] as const;

/** The pax keys GNU tar writes for a sparse file (formats 0.0, 0.1 and 1.0). */
const SPARSE_PAX_KEY = /^\d+ GNU\.sparse\./m;

const SPARSE_REFUSED = "sparse files are refused, since they unpack far larger than the archive says";

/**
 * Why an entry node `tar` skips is refused: GNU tar, which does the writing, would extract it
 * unseen by the vetting (a GNU sparse file: gigabytes from a few hundred bytes).
 */
function skippedEntryError(entry: ReadEntry): UnsafeArchiveError {
  if (entry.type === "SparseFile") return new UnsafeArchiveError(`entry "${entry.path}" is a GNU sparse file: ${SPARSE_REFUSED}`);
  if (entry.meta) return new UnsafeArchiveError(`entry "${entry.path}" has a ${entry.size}-byte ${entry.type} header, too large to vet`);
  return new UnsafeArchiveError(`entry "${entry.path}" is a ${entry.type}, which is never extracted`);
}

/**
 * A writable that parses a tar or tar.gz stream without writing anything, and fails if any entry
 * could land outside the extraction root: absolute or `..` names, hard links out of the root,
 * symbolic links whose target, resolved through the links before them, leaves the root (unless
 * allowed), entries placed beneath a symbolic link (which would write through it), device or
 * FIFO entries, and sparse files (whose real size the headers node `tar` reads do not give).
 * `done` settles when the stream has ended: with a summary, or with UnsafeArchiveError,
 * ArchiveLimitError or (garbled bytes) CorruptArchiveError. Each written chunk is vetted before
 * `write` returns, so a caller may pass a chunk on only after writing it here.
 */
export function createArchiveVetter(options: InspectOptions = {}): { sink: Parser; done: Promise<ArchiveSummary>; violation: () => Error | undefined } {
  const { check: checkEntry, finish, summary } = createEntryChecker(options);
  let violation: Error | undefined;
  const refuse = (error: Error) => {
    if (violation) return;
    violation = error;
    sink.abort(error);
  };
  const check = (entry: ReadEntry) => {
    // GNU tar renames every later entry after a global `path`; node `tar` ignores it.
    const global = entry.globalExtended;
    const renaming = global && GLOBAL_KEYS_REFUSED.find((key) => global[key] !== undefined);
    if (renaming) throw new UnsafeArchiveError(`a global pax header sets "${renaming}" for every entry after it, which GNU tar and node tar apply differently`);
    checkEntry({ path: entry.path, kind: tarKinds[entry.type] ?? "other", linkpath: entry.linkpath, size: entry.size, typeName: entry.type });
  };

  const sink: Parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      entry.resume();
      if (violation) return;
      try {
        check(entry);
      } catch (error) {
        refuse(error as Error);
      }
    },
  });
  sink.on("ignoredEntry", (entry: ReadEntry) => refuse(skippedEntryError(entry)));
  // node `tar` keeps only the pax keys it knows; the sparse ones reach us only as the raw header.
  sink.on("meta", (text: string) => {
    if (!SPARSE_PAX_KEY.test(text)) return;
    const name = /^\d+ GNU\.sparse\.name=(.*)$/m.exec(text)?.[1];
    refuse(new UnsafeArchiveError(`${name ? `entry "${name}"` : "an entry"} is a PAX sparse file (GNU.sparse.* headers): ${SPARSE_REFUSED}`));
  });

  const done = new Promise<ArchiveSummary>((resolve, reject) => {
    sink.on("error", (error: Error) => {
      reject(violation ?? new CorruptArchiveError(`archive is not a readable tar.gz: ${error.message}`));
    });
    sink.on("end", () => {
      if (!violation && summary.entries === 0) violation = new CorruptArchiveError("archive holds no entries");
      if (!violation) {
        try {
          finish();
        } catch (error) {
          violation = error as Error;
        }
      }
      if (violation) reject(violation);
      else resolve({ ...summary });
    });
  });
  done.catch(() => undefined);
  return { sink, done, violation: () => violation };
}

/** Reads a whole archive file through `createArchiveVetter`, writing nothing. */
export async function inspectArchive(file: string, options: InspectOptions = {}): Promise<ArchiveSummary> {
  const { sink, done } = createArchiveVetter(options);
  await pipeline(createReadStream(file), sink).catch(() => undefined);
  return done;
}
