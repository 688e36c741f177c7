import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { hasZstd, ZSTD_MISSING, type Compression } from "./compression";
import { CorruptArchiveError, UnsafeArchiveError } from "./errors";
import { createArchiveVetter, inspectArchive, type ArchiveSummary, type InspectOptions } from "./inspect";

const GNU_TAR_EXTRACT = ["-x", "-f", "-", "--no-same-owner", "--delay-directory-restore"];

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

function exitOf(child: ChildProcess, what: string, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const unknownType = GNU_TAR_UNKNOWN_TYPE.exec(stderr())?.[1];
      if (unknownType) reject(new UnsafeArchiveError(`the archive holds an entry GNU tar and node tar read differently: ${unknownType}`));
      else if (code === 0) resolve();
      else reject(new CorruptArchiveError(`${what} could not read the archive: ${stderr().trim().split("\n")[0] || `exit ${code}`}`));
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
  const compression = options.compression ?? "gzip";
  if (compression === "zstd" && !hasZstd()) throw new Error(ZSTD_MISSING);
  await mkdir(destDir, { recursive: true });
  const vetter = createArchiveVetter(options);
  const vetted = vetter.done;
  const processes: Promise<void>[] = [];
  const children: ChildProcess[] = [];

  // gzip: GNU tar and node tar each decompress (two cores); zstd: one `zstd -dc` feeds both.
  let tarInput: Readable = source;
  if (compression === "zstd") {
    const zstd = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
    children.push(zstd);
    processes.push(exitOf(zstd, "zstd", collectStderr(zstd)));
    zstd.stdin!.on("error", () => undefined);
    source.pipe(zstd.stdin!);
    tarInput = zstd.stdout!;
  }
  const tar = spawn("tar", [...GNU_TAR_EXTRACT, ...(compression === "gzip" ? ["-z"] : []), "-C", destDir], {
    stdio: ["pipe", "ignore", "pipe"],
    env: { ...process.env, LC_ALL: "C" },
  });
  children.push(tar);
  processes.push(exitOf(tar, "tar", collectStderr(tar)));
  const sourceDone = new Promise<void>((resolve, reject) => {
    source.on("error", reject);
    source.on("end", resolve);
  });
  const gate = vettedPassThrough(vetter);
  processes.push(
    new Promise<void>((resolve, reject) => {
      gate.once("error", reject);
      gate.once("end", resolve);
    }),
  );
  // tar stopping early (on garbage, or past the end-of-archive blocks) must not stall the vetting:
  // swallow its EPIPE and keep the bytes flowing to the vetter; tar's exit status tells the rest.
  tar.stdin!.on("error", () => {
    gate.unpipe();
    gate.resume();
  });
  tarInput.pipe(gate).pipe(tar.stdin!);

  try {
    const [summary] = await Promise.all([vetted, sourceDone, ...processes]);
    return summary;
  } catch (error) {
    source.unpipe();
    source.destroy();
    tarInput.unpipe();
    for (const child of children) child.kill("SIGKILL");
    vetter.sink.end();
    await Promise.allSettled(processes);
    // The vetter's verdict (which entry is unsafe) says more than tar's exit status.
    const verdict = await Promise.race([vetted.then(() => undefined, (e: Error) => e), new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
    throw verdict ?? error;
  }
}
