import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { create } from "tar";
import { hasZstd, ZSTD_MISSING, type Compression } from "./compression";
import { vettedPassThrough } from "./extract";
import { createArchiveVetter } from "./inspect";

export interface PackedArchive {
  file: string;
  sha256: string;
  bytes: number;
  /** The sha256 of each `chunkBytes` (ARTIFACT_CHUNK_BYTES) of the file in turn, the last one shorter: a restore checks each before extracting it. */
  chunkSha256s: string[];
  chunkBytes: number;
  /** What the archive unpacks to, counted as extraction counts it (see `recordedSizeLimits`). */
  unpackedBytes: number;
  entries: number;
}

/** What a packed artifact's chunks are, each hashed on its own (see `extractChunkVerified`). */
export const ARTIFACT_CHUNK_BYTES = 4 * 1024 * 1024;

/** A pass-through that hashes and counts what flows through it; given `chunkBytes`, each chunk of that size too. */
export class HashingStream extends Transform {
  private readonly hash = createHash("sha256");
  private chunkHash = createHash("sha256");
  private chunkFill = 0;
  readonly chunkSha256s: string[] = [];
  bytes = 0;

  constructor(private readonly chunkBytes?: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.chunkBytes) this.hashChunks(chunk, this.chunkBytes);
    this.push(chunk);
    callback();
  }

  override _flush(callback: () => void) {
    if (this.chunkFill > 0) this.chunkSha256s.push(this.chunkHash.digest("hex"));
    callback();
  }

  private hashChunks(data: Buffer, size: number) {
    for (let offset = 0; offset < data.length; ) {
      const take = Math.min(size - this.chunkFill, data.length - offset);
      this.chunkHash.update(data.subarray(offset, offset + take));
      this.chunkFill += take;
      offset += take;
      if (this.chunkFill === size) {
        this.chunkSha256s.push(this.chunkHash.digest("hex"));
        this.chunkHash = createHash("sha256");
        this.chunkFill = 0;
      }
    }
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/**
 * Packs the whole of `dir` (symbolic links kept as links, so a virtualenv stays a virtualenv)
 * into `file`, hashing the bytes as they are written and counting what they unpack to. The tar
 * stream goes through the same vetting as an extraction, so what is recorded is exactly what a
 * restore will count, and an output a restore would refuse (a FIFO) fails here, with
 * UnsafeArchiveError. gzip: node `tar` with zlib. zstd: GNU tar into `zstd -3` on every core,
 * several times faster on big trees (see bench/pack).
 */
export async function packDirectory(dir: string, file: string, compression: Compression = "gzip"): Promise<PackedArchive> {
  const hashing = new HashingStream(ARTIFACT_CHUNK_BYTES);
  const vetter = createArchiveVetter({ allowExternalSymlinks: true });
  const packed = async () => ({ file, sha256: hashing.digest(), bytes: hashing.bytes, chunkSha256s: hashing.chunkSha256s, chunkBytes: ARTIFACT_CHUNK_BYTES, ...(await vetter.done) });
  if (compression === "gzip") {
    // Not `portable`, which would force 0644/0755 modes and zero directories' times: the modes as
    // on disk, as GNU tar packs them for zstd, so a sealed tree stays sealed (see sealTree).
    const tar = create({ cwd: dir, portable: false, follow: false }, ["."]);
    await pipeline(tar, vettedPassThrough(vetter), createGzip({ level: 6 }), hashing, createWriteStream(file));
    return packed();
  }
  if (!hasZstd()) throw new Error(ZSTD_MISSING);
  const tar = spawn("tar", ["-c", "-f", "-", "-C", dir, "--numeric-owner", "."], { stdio: ["ignore", "pipe", "pipe"] });
  const zstd = spawn("zstd", ["-3", "-T0", "-q", "-c"], { stdio: ["pipe", "pipe", "pipe"] });
  const exits = [tar, zstd].map(
    (child, i) =>
      new Promise<void>((resolve, reject) => {
        let stderr = "";
        child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${i === 0 ? "tar" : "zstd"} failed: ${stderr.trim() || `exit ${code}`}`))));
      }),
  );
  try {
    await Promise.all([pipeline(tar.stdout!, vettedPassThrough(vetter), zstd.stdin!), pipeline(zstd.stdout!, hashing, createWriteStream(file)), ...exits]);
  } catch (error) {
    tar.kill("SIGKILL");
    zstd.kill("SIGKILL");
    throw vetter.violation() ?? error;
  }
  return packed();
}
