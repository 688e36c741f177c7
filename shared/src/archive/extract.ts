import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { hasZstd, ZSTD_MISSING, type Compression } from "./compression";
import { ChunkVerificationError, CorruptArchiveError, UnsafeArchiveError } from "./errors";
import { createArchiveVetter, inspectArchive, type ArchiveSummary, type InspectOptions } from "./inspect";

const GNU_TAR_EXTRACT = ["-x", "-f", "-", "--no-same-owner", "--delay-directory-restore"];
/**
 * For bytes the packer wrote (GNU tar for zstd, each directory's entries together): the modes as packed,
 * through a umask of 0, instead of a chmod after each file (--same-permissions, root's default),
 * which also drops set-id bits; no directory metadata held to the end. About a tenth less time
 * on a 10,000-file venv.
 */
const GNU_TAR_EXTRACT_PACKED = ["-x", "-f", "-", "--no-same-owner", "--no-same-permissions"];

export interface ExtractOptions extends InspectOptions {
  /** Default gzip. */
  compression?: Compression;
}

/**
 * Extracts a tar.gz file into `destDir` only after every entry has been vetted: nothing is
 * written when the vetting refuses the archive. For untrusted uploads. The vetting is node `tar`;
 * the writing is GNU tar, several times faster on trees of thousands of files (see the design
 * notes). What only GNU tar notices (a type letter it does not know) fails the extraction after
 * the writing, inside `destDir`, which the caller must then discard.
 */
export async function extractArchive(file: string, destDir: string, options: InspectOptions = {}): Promise<ArchiveSummary> {
  const summary = await inspectArchive(file, options);
  await extractStream(createReadStream(file), destDir, options);
  return summary;
}

/**
 * GNU tar's warning (LC_ALL=C) for a type letter it does not know, which it extracts as a plain
 * file under the header's own name. node `tar` reads some of those otherwise (an old GNU 'N'
 * header names the next entry), so the entry written is not the entry vetted.
 */
const GNU_TAR_UNKNOWN_TYPE = /^tar: (.*Unknown file type.*)$/m;

function collectStderr(child: ChildProcess): () => string {
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 65536) stderr += chunk.toString();
  });
  return () => stderr;
}

/**
 * Settles when `child` exits: rejects unless it exited 0. `brokenPipeIsFine`: for a decompressor
 * feeding GNU tar, which stops reading at the archive's end-of-archive blocks (and fails on its
 * own when it stops for anything else).
 */
function exitOf(child: ChildProcess, what: string, stderr: () => string, brokenPipeIsFine = false): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const unknownType = GNU_TAR_UNKNOWN_TYPE.exec(stderr())?.[1];
      if (unknownType) reject(new UnsafeArchiveError(`the archive holds an entry GNU tar and node tar read differently: ${unknownType}`));
      else if (code === 0 || (brokenPipeIsFine && signal === "SIGPIPE")) resolve();
      else reject(new CorruptArchiveError(`${what} could not read the archive: ${stderr().trim().split("\n")[0] || `exit ${code ?? signal}`}`));
    });
  });
}

/**
 * What the vetter is handed at a time. node `tar`'s parser costs per chunk as much as per byte:
 * a pipe's 64 KiB reads took it twice as long over a 150 MB tar as 1 MiB batches (bench/restore).
 */
const VETTING_BATCH_BYTES = 1024 * 1024;

/**
 * Passes the bytes on only once `vetter` has read them, so the writer never receives a byte past
 * the header of an entry the vetter refuses (an entry over a size limit is stopped at its header,
 * before any of it is written), nor the archive's end when the links as a whole are refused.
 * Chunks are gathered into batches of VETTING_BATCH_BYTES first.
 */
export function vettedPassThrough(vetter: Pick<ReturnType<typeof createArchiveVetter>, "sink" | "violation">): Transform {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const takePending = () => {
    const batch = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return batch;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes < VETTING_BATCH_BYTES) return callback();
      const batch = takePending();
      vetter.sink.write(batch);
      const violation = vetter.violation();
      if (violation) callback(violation);
      else callback(null, batch);
    },
    flush(callback) {
      const last = pendingBytes > 0 ? takePending() : undefined;
      if (last) vetter.sink.write(last);
      vetter.sink.end();
      const violation = vetter.violation();
      if (violation) return callback(violation);
      if (last) this.push(last);
      callback();
    },
  });
}

/**
 * Extracts a tar.gz or tar.zst stream into `destDir` in one pass: node `tar` vets each chunk,
 * then GNU tar writes it. Rejects if either fails, and the caller must then discard `destDir`:
 * use it only for a scratch directory that nothing reads until this resolves. Escapes cannot
 * land outside `destDir` meanwhile, since GNU tar itself refuses `..` members, strips leading `/`
 * and never writes through the links it extracted.
 */
export async function extractStream(source: Readable, destDir: string, options: ExtractOptions = {}): Promise<ArchiveSummary> {
  const vetter = createArchiveVetter(options);
  const vetted = vetter.done;
  const gate = vettedPassThrough(vetter);
  const gated = new Promise<void>((resolve, reject) => {
    gate.once("error", reject);
    gate.once("end", resolve);
  });
  try {
    const [summary] = await Promise.all([vetted, runExtraction(source, gate, destDir, options.compression ?? "gzip", "tar"), gated]);
    return summary;
  } catch (error) {
    vetter.sink.end();
    // The vetter's verdict (which entry is unsafe) says more than tar's exit status.
    const verdict = await Promise.race([vetted.then(() => undefined, (e: Error) => e), new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
    throw verdict ?? error;
  }
}

/**
 * Extracts an artifact Slipway packed into `destDir`, in one pass, each chunk of its bytes
 * checked against the sha256 the packer recorded for it before any of it reaches GNU tar: no
 * byte extracted is one the trusted side did not write, and the packer vetted those bytes as a
 * restore would (`packDirectory`), so nothing parses them again here. Bytes past the recorded
 * chunks, or missing from them, fail it too. The caller discards `destDir` on failure.
 */
export async function extractChunkVerified(source: Readable, destDir: string, options: { compression: Compression; chunkBytes: number; chunkSha256s: string[] }): Promise<void> {
  await runExtraction(source, chunkVerifier(options.chunkBytes, options.chunkSha256s), destDir, options.compression, "file");
}

/** Passes on each `chunkBytes` of what it receives once its sha256 is the next of `expected`. */
function chunkVerifier(chunkBytes: number, expected: string[]): Transform {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let index = 0;
  const verified = (chunk: Buffer): Error | undefined => {
    const want = expected[index];
    index += 1;
    if (want === undefined) return new ChunkVerificationError(`it goes on past its ${expected.length} recorded chunks`);
    const got = createHash("sha256").update(chunk).digest("hex");
    return got === want ? undefined : new ChunkVerificationError(`its sha256 differs from the manifest's in chunk ${index} of ${expected.length} (${got}, recorded ${want})`);
  };
  return new Transform({
    transform(data: Buffer, _encoding, callback) {
      pending.push(data);
      pendingBytes += data.length;
      while (pendingBytes >= chunkBytes) {
        const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const chunk = all.subarray(0, chunkBytes);
        const rest = all.subarray(chunkBytes);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
        const failure = verified(chunk);
        if (failure) return callback(failure);
        this.push(chunk);
      }
      callback();
    },
    flush(callback) {
      if (pendingBytes > 0) {
        const last = Buffer.concat(pending, pendingBytes);
        const failure = verified(last);
        if (failure) return callback(failure);
        this.push(last);
      }
      if (index !== expected.length) return callback(new ChunkVerificationError(`it ends after ${index} of its ${expected.length} recorded chunks`));
      callback();
    },
  });
}

/**
 * Feeds `source` through `filter` (which may refuse it) into GNU tar, writing into `destDir`.
 * `filterReads` says whether the filter reads the tar stream (decompressed by `zstd -dc` before
 * it, or by node tar alongside `gzip -dc` after it, for the vetting) or the file's own bytes (then
 * `zstd -dc` or `gzip -dc` after it, and only the packer's bytes reach them). Settles once
 * everything ended. Escapes cannot land outside `destDir` meanwhile, since GNU tar itself
 * refuses `..` members, strips leading `/` and never writes through the links it extracted.
 */
async function runExtraction(source: Readable, filter: Transform, destDir: string, compression: Compression, filterReads: "tar" | "file"): Promise<void> {
  if (compression === "zstd" && !hasZstd()) throw new Error(ZSTD_MISSING);
  await mkdir(destDir, { recursive: true });
  const processes: Promise<void>[] = [];
  const children: ChildProcess[] = [];
  const packed = filterReads === "file";
  // node tar packs gzip artifacts, and need not keep each directory's entries together: a
  // directory's time set on leaving it would be changed by an entry of it arriving later.
  const delayDirectories = packed && compression === "gzip" ? ["--delay-directory-restore"] : [];
  const args = [...(packed ? GNU_TAR_EXTRACT_PACKED : GNU_TAR_EXTRACT), ...delayDirectories, "-C", destDir];
  const env = { ...process.env, LC_ALL: "C" };
  const tar = spawn(packed ? "sh" : "tar", packed ? ["-c", 'umask 0 && exec tar "$@"', "tar", ...args] : args, { stdio: ["pipe", "ignore", "pipe"], env });
  children.push(tar);
  const tarExit = exitOf(tar, "tar", collectStderr(tar));
  let tarInput = tar.stdin!;
  // Whatever node need not read is decompressed on its way from the filter to tar, by a process
  // writing straight into tar's stdin: the decompressed stream (three times the file) stays out of
  // node. Not `tar --zstd -f -` or `tar -z`: reading from a pipe, GNU tar puts one more process of
  // its own before the decompressor, copying 10 KiB records (a tenth more time; bench/restore).
  if (compression === "gzip" || packed) {
    const name = compression === "gzip" ? "gzip" : "zstd";
    const decompressor = spawn(name, ["-d", "-c", "-q"], { stdio: ["pipe", tar.stdin!, "pipe"], env });
    // Only the decompressor writes into tar now: tar sees the end when it is done.
    tar.stdin!.destroy();
    children.push(decompressor);
    const decompressed = exitOf(decompressor, name, collectStderr(decompressor), true);
    // tar's complaint about the nothing it got says less than the decompressor's own reason.
    processes.push(
      decompressed,
      tarExit.catch(async (error: Error) => {
        await decompressed;
        throw error;
      }),
    );
    tarInput = decompressor.stdin!;
  } else {
    processes.push(tarExit);
  }
  // The chain: source → [zstd] → filter → tar for the vetting (gzip: node tar and gzip each
  // decompress, on two cores), source → filter → decompressor → tar for the file's bytes.
  let filterInput: Readable = source;
  if (compression === "zstd" && filterReads === "tar") {
    const zstd = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
    children.push(zstd);
    processes.push(exitOf(zstd, "zstd", collectStderr(zstd)));
    zstd.stdin!.on("error", () => undefined);
    source.pipe(zstd.stdin!);
    filterInput = zstd.stdout!;
  }
  processes.push(
    new Promise<void>((resolve, reject) => {
      source.on("error", reject);
      source.on("end", resolve);
      // Closed without either (a connection dropped quietly): it did not end; never wait for ever.
      source.on("close", () => reject(new Error("the stream closed before the archive ended")));
    }),
    new Promise<void>((resolve, reject) => {
      filter.once("error", reject);
      filter.once("end", resolve);
    }),
  );
  // tar stopping early (on garbage, or past the end-of-archive blocks) must not stall the filter:
  // swallow its EPIPE and keep the bytes flowing through it; tar's exit status tells the rest.
  tarInput.on("error", () => {
    filter.unpipe();
    filter.resume();
  });
  filterInput.pipe(filter).pipe(tarInput);
  try {
    await Promise.all(processes);
  } catch (error) {
    source.unpipe();
    source.destroy();
    filterInput.unpipe();
    for (const child of children) child.kill("SIGKILL");
    await Promise.allSettled(processes);
    throw error;
  }
}
