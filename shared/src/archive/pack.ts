import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { create } from "tar";

export interface PackedArchive {
  file: string;
  sha256: string;
  bytes: number;
}

/** A pass-through that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash("sha256");
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.push(chunk);
    callback();
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/**
 * Packs the whole of `dir` (symbolic links kept as links, so a virtualenv stays a virtualenv) into
 * a tar.gz at `file`, hashing the bytes as they are written.
 */
export async function packDirectory(dir: string, file: string): Promise<PackedArchive> {
  const hashing = new HashingStream();
  await pipeline(create({ cwd: dir, gzip: { level: 6 }, portable: true, follow: false }, ["."]), hashing, createWriteStream(file));
  return { file, sha256: hashing.digest(), bytes: hashing.bytes };
}
