import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { Transform, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { hasZstd, ZSTD_MISSING, type Compression } from "./compression";
import { collectStderr, decompressedTarGuard, MAX_GZIP_RATIO, startDecompression } from "./decompress";
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

function tarExit(tar: ChildProcess, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.on("error", reject);
    tar.on("close", (code) => {
      const unknownType = GNU_TAR_UNKNOWN_TYPE.exec(stderr())?.[1];
      if (unknownType) reject(new UnsafeArchiveError(`the archive holds an entry GNU tar and node tar read differently: ${unknownType}`));
      else if (code === 0) resolve();
      else reject(new CorruptArchiveError(`tar could not read the archive: ${stderr().trim().split("\n")[0] || `exit ${code}`}`));
    });
  });
}

/**
 * Passes each chunk on only once `vetter` has read it, so the writer never receives a byte past
 * the header of an entry the vetter refuses (an entry over a size limit is stopped at its header,
 * before any of it is written), nor the archive's end when the links as a whole are refused.
 */
export function vettedPassThrough(vetter: Pick<ReturnType<typeof createArchiveVetter>, "sink" | "violation">): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      vetter.sink.write(chunk);
      const violation = vetter.violation();
      if (violation) callback(violation);
      else callback(null, chunk);
    },
    flush(callback) {
      vetter.sink.end();
      callback(vetter.violation());
    },
  });
}

/** How long a failed extraction waits for its parts to settle before it reports the failure. */
const CLEANUP_WAIT_MS = 5000;

/**
 * Extracts a tar.gz or tar.zst stream into `destDir` in one pass: decompressed once, node `tar`
 * vets each chunk, then GNU tar writes it. Rejects if any of them fails, and the caller must then
 * discard `destDir`: use it only for a scratch directory that nothing reads until this resolves.
 * Escapes cannot land outside `destDir` meanwhile, since GNU tar itself refuses `..` members,
 * strips leading `/` and never writes through the links it extracted.
 */
export async function extractStream(source: Readable, destDir: string, options: ExtractOptions = {}): Promise<ArchiveSummary> {
  const compression = options.compression ?? "gzip";
  if (compression === "zstd" && !hasZstd()) throw new Error(ZSTD_MISSING);
  await mkdir(destDir, { recursive: true });
  const vetter = createArchiveVetter(options);
  const vetted = vetter.done;
  const decompression = startDecompression(compression);
  const tar = spawn("tar", [...GNU_TAR_EXTRACT, "-C", destDir], { stdio: ["pipe", "ignore", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  let compressedBytes = 0;
  const guard = decompressedTarGuard(() => compressedBytes, compression === "gzip" ? MAX_GZIP_RATIO : Infinity);
  const gate = vettedPassThrough(vetter);
  const readableEnd = (stream: Readable) => finished(stream, { writable: false });
  const settled = [vetted, readableEnd(source), decompression.finished, tarExit(tar, collectStderr(tar)), readableEnd(guard), readableEnd(gate)];
  // tar stopping early (on garbage, or past the end-of-archive blocks) must not stall the vetting:
  // swallow its EPIPE and keep the bytes flowing to the vetter; tar's exit status tells the rest.
  tar.stdin!.on("error", () => {
    gate.unpipe();
    gate.resume();
  });
  source.on("data", (chunk: Buffer) => (compressedBytes += chunk.length));
  source.pipe(decompression.input);
  decompression.output.pipe(guard).pipe(gate).pipe(tar.stdin!);

  try {
    const [summary] = await Promise.all(settled);
    return summary as ArchiveSummary;
  } catch (error) {
    // Taken before the vetter is ended below, which cuts its archive short.
    const violation = vetter.violation();
    source.unpipe();
    source.destroy();
    decompression.output.unpipe();
    decompression.stop();
    tar.kill("SIGKILL");
    guard.destroy();
    gate.destroy();
    vetter.sink.end();
    // Everything was stopped above; the wait only lets their last events land. Bounded: a parser
    // that had already failed may never settle, and a restore must end with its error, not hang.
    await Promise.race([Promise.allSettled(settled), new Promise((r) => setTimeout(r, CLEANUP_WAIT_MS).unref())]);
    // The vetter's verdict (which entry is unsafe) says more than tar's exit status; but once the
    // guard has refused the stream, the vetter saw it cut short, which says less than the guard.
    if (error instanceof UnsafeArchiveError) throw violation ?? error;
    const verdict = await Promise.race([vetted.then(() => undefined, (e: Error) => e), new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]);
    throw verdict ?? error;
  }
}
