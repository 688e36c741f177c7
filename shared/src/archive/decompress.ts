import { spawn, type ChildProcess } from "node:child_process";
import { Transform, type Readable, type Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { Compression } from "./compression";
import { CorruptArchiveError, UnsafeArchiveError } from "./errors";

/**
 * node `tar`'s own bound on the gzip it decompresses, kept now that it no longer decompresses it:
 * past it, what follows the archive's entries (which no size limit covers) is a bomb. Deflate
 * cannot go much past 1032:1, whereas zstd packs a run of zeros (a preallocated file) far
 * tighter, legitimately: zstd was never bounded so, and is not.
 */
export const MAX_GZIP_RATIO = 1000;

/** Big chunks: fewer hand-offs between the zlib thread, the vetting and GNU tar's pipe. */
const GUNZIP_CHUNK = 256 * 1024;

/** Where a stream of compressed bytes is written and its tar read back, decompressed once. */
export interface Decompression {
  input: Writable;
  output: Readable;
  /** Settles when the decompressor has finished: rejects with CorruptArchiveError on bad bytes. */
  finished: Promise<void>;
  /** Stops it at once (its output is no longer wanted). */
  stop(): void;
}

/** Collects a child's stderr, bounded, for its failure message. */
export function collectStderr(child: ChildProcess): () => string {
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    if (stderr.length < 65536) stderr += chunk.toString();
  });
  return () => stderr;
}

/**
 * gzip in node's zlib, on the libuv thread pool (about twice as fast as the `gzip` GNU tar would
 * run); zstd in the `zstd` command, as Node 20's zlib has none.
 */
export function startDecompression(compression: Compression): Decompression {
  if (compression === "gzip") {
    const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
    const done = finished(gunzip, { writable: false }).catch((error: Error) => {
      throw new CorruptArchiveError(`gzip could not read the archive: ${error.message}`);
    });
    done.catch(() => undefined);
    return { input: gunzip, output: gunzip, finished: done, stop: () => gunzip.destroy() };
  }
  const zstd = spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  const stderr = collectStderr(zstd);
  const done = new Promise<void>((resolve, reject) => {
    zstd.on("error", reject);
    zstd.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new CorruptArchiveError(`zstd could not read the archive: ${stderr().trim().split("\n")[0] || `exit ${code}`}`));
    });
  });
  done.catch(() => undefined);
  // Its stdin closing early (on garbage) is told by its exit status.
  zstd.stdin!.on("error", () => undefined);
  return { input: zstd.stdin!, output: zstd.stdout!, finished: done, stop: () => zstd.kill("SIGKILL") };
}

const COMPRESSED_MAGIC: [string, Buffer][] = [
  ["gzip", Buffer.from([0x1f, 0x8b])],
  ["zstd", Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
];

/**
 * Checks the decompressed tar on its way to the vetting: node `tar` would decompress a stream that
 * starts with gzip or zstd magic again, where GNU tar reads it as it is, so the two would read
 * different archives; and the output may not outgrow `compressedBytes()` more than `maxRatio` times.
 */
export function decompressedTarGuard(compressedBytes: () => number, maxRatio: number): Transform {
  const magicLength = Math.max(...COMPRESSED_MAGIC.map(([, magic]) => magic.length));
  // The stream's first bytes, held until there are enough to compare (a pipe may deliver fewer).
  let head: Buffer | undefined = Buffer.alloc(0);
  let decompressed = 0;
  const checkHead = (bytes: Buffer) => {
    const inner = COMPRESSED_MAGIC.find(([, magic]) => bytes.subarray(0, magic.length).equals(magic));
    return inner && new UnsafeArchiveError(`the archive holds ${inner[0]} data inside its compression, not a tar`);
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      decompressed += chunk.length;
      if (decompressed / Math.max(1, compressedBytes()) > maxRatio) {
        return callback(new UnsafeArchiveError(`the archive decompresses to over ${maxRatio} times its size (a decompression bomb)`));
      }
      if (head) {
        head = Buffer.concat([head, chunk]);
        if (head.length < magicLength) return callback();
        [chunk, head] = [head, undefined];
        const inner = checkHead(chunk);
        if (inner) return callback(inner);
      }
      callback(null, chunk);
    },
    flush(callback) {
      callback(head && checkHead(head), head?.length ? head : undefined);
    },
  });
}
