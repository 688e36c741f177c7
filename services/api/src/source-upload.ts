import { randomUUID } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Request } from "express";
import { HashingStream, storageKeys, type ObjectStore } from "@slipway/shared";
import { errors } from "./errors";

/** The formats a source may be uploaded in, by their first bytes. */
export const SOURCE_FORMATS = {
  gzip: { magic: [0x1f, 0x8b], extension: ".tar.gz", describe: "gzip data (expected a .tar.gz)" },
  zip: { magic: [0x50, 0x4b, 0x03, 0x04], extension: ".zip", describe: "a zip archive" },
} as const;
export type SourceFormat = keyof typeof SOURCE_FORMATS;

/** Fails the stream as soon as the first bytes show the wrong format, or it grows past `maxBytes`. */
class FormatGuard extends Transform {
  private seen = 0;
  private readonly head: number[] = [];
  private readonly magic: readonly number[];

  constructor(
    private readonly maxBytes: number,
    private readonly format: SourceFormat,
  ) {
    super();
    this.magic = SOURCE_FORMATS[format].magic;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
    this.seen += chunk.length;
    if (this.seen > this.maxBytes) return callback(errors.payloadTooLarge(this.maxBytes));
    for (let i = 0; this.head.length < this.magic.length && i < chunk.length; i++) this.head.push(chunk[i]!);
    if (this.head.length === this.magic.length && this.head.some((byte, i) => byte !== this.magic[i])) {
      return callback(this.notThisFormat());
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback) {
    if (this.seen === 0) return callback(errors.emptyBody());
    if (this.head.length < this.magic.length) return callback(this.notThisFormat());
    callback();
  }

  private notThisFormat() {
    return errors.notThisFormat(SOURCE_FORMATS[this.format].describe);
  }
}

export interface StoredSource {
  key: string;
  sha256: string;
  bytes: number;
}

/**
 * Streams a request body into object storage while hashing it: never more than one upload part in
 * memory. The content address is known only at the last byte, so the bytes land under a temporary
 * key first and are then copied (server side) to `sources/<app>/<sha256>.tar.gz` (or `.zip`).
 */
export async function storeSourceUpload(req: Readable & { headers?: Request["headers"] }, store: ObjectStore, app: string, maxBytes: number, format: SourceFormat): Promise<StoredSource> {
  const declared = Number(req.headers?.["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw errors.payloadTooLarge(maxBytes);
  if (declared === 0) throw errors.emptyBody();

  const guard = new FormatGuard(maxBytes, format);
  const hashing = new HashingStream();
  const tempKey = storageKeys.incomingUpload(randomUUID());
  let uploaded = false;
  try {
    const upload = store.putStream(tempKey, hashing, format === "zip" ? "application/zip" : "application/gzip").then(() => {
      uploaded = true;
    });
    const transfer = pipeline(req, guard, hashing);
    // The transfer's error (bad bytes, too large) is the one to report when both fail.
    const [transferResult, uploadResult] = await Promise.allSettled([transfer, upload]);
    if (transferResult.status === "rejected") throw transferResult.reason;
    if (uploadResult.status === "rejected") throw uploadResult.reason;

    const sha256 = hashing.digest();
    const key = storageKeys.source(app, sha256, SOURCE_FORMATS[format].extension);
    if (!(await store.exists(key))) await store.copy(tempKey, key);
    return { key, sha256, bytes: hashing.bytes };
  } finally {
    if (uploaded) await store.remove(tempKey).catch(() => undefined);
  }
}
