import type { Client, ClientOptions } from "minio";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { DEFAULT_S3_IDLE_TIMEOUT_S, type StorageConfig } from "../config";

/** S3 requires every part but the last to be at least 5 MiB; 8 MiB bounds memory per upload to about two parts. */
const PART_SIZE = 8 * 1024 * 1024;

export class ObjectNotFoundError extends Error {
  override name = "ObjectNotFoundError";
  constructor(readonly key: string) {
    super(`object ${key} does not exist`);
  }
}

const isNotFound = (error: unknown) => {
  const code = (error as { code?: string }).code;
  return code === "NoSuchKey" || code === "NotFound" || code === "NoSuchObject";
};

/** A storage connection cut for moving no byte for too long (see S3_IDLE_TIMEOUT_S). */
export class StorageStalledError extends Error {
  override name = "StorageStalledError";
  readonly code = "ESTALLED";
}

/**
 * The client's connections, cut when idle for `idleMs` with a StorageStalledError, in use or not.
 * Node's own agent timeout only emits an event for a socket in use, which the S3 client ignores.
 */
function idleCuttingAgent(useSSL: boolean, idleMs: number): http.Agent {
  // The agent's own timeout too: it re-arms a socket's timer with it whenever the socket is pooled.
  const agent = new (useSSL ? https.Agent : http.Agent)({ keepAlive: true, timeout: idleMs });
  const connect = agent.createConnection.bind(agent);
  agent.createConnection = (...args: Parameters<http.Agent["createConnection"]>) => {
    const socket = connect(...args) as Socket;
    socket.setTimeout(idleMs);
    socket.on("timeout", () => socket.destroy(new StorageStalledError(`the storage connection moved no data for ${idleMs / 1000} s`)));
    return socket;
  };
  return agent;
}

/** A store that could not be reached or answered 5xx, as told by something other than the S3 client. */
export const STORE_UNAVAILABLE = "ESTOREUNAVAILABLE";

const TRANSIENT_CODES = new Set([STORE_UNAVAILABLE, "ESTALLED", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "XMinioServerNotInitialized"]);

/** Errors that say the store is unreachable or busy for now, not that the request is wrong. */
export function isTransientStorageError(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  if (code && TRANSIENT_CODES.has(code)) return true;
  const message = (error as Error)?.message ?? "";
  return /socket hang up|other side closed|ECONNRESET|ECONNREFUSED/.test(message);
}

export interface RetryPolicy {
  /** Delays between attempts; their sum is how long an outage is ridden out. */
  delaysMs: number[];
}

/** About 30 s of exponential backoff: a store restarting comes back well within it. */
export const DEFAULT_RETRY: RetryPolicy = { delaysMs: [250, 500, 1000, 2000, 4000, 8000, 8000, 8000] };

export interface PutResult {
  key: string;
  bytes: number;
}

/**
 * The one place that talks to the S3-compatible store. Uploads stream in bounded parts through
 * the client's multipart calls (not `putObject` on a stream, which buffers a whole part sized for
 * a 5 TiB object and needs ListMultipartUploads, which small S3 servers lack).
 */
export class ObjectStore {
  readonly bucket: string;
  private readonly options: ClientOptions;
  /** How long a connection may move no byte before it is cut (S3_IDLE_TIMEOUT_S). */
  readonly idleMs: number;
  private clientLoaded: Promise<Client> | undefined;

  constructor(
    config: StorageConfig,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {
    const endpoint = new URL(config.S3_ENDPOINT);
    const useSSL = endpoint.protocol === "https:";
    this.bucket = config.S3_BUCKET;
    this.idleMs = (config.S3_IDLE_TIMEOUT_S ?? DEFAULT_S3_IDLE_TIMEOUT_S) * 1000;
    this.options = {
      endPoint: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : useSSL ? 443 : 80,
      useSSL,
      accessKey: config.S3_ACCESS_KEY,
      secretKey: config.S3_SECRET_KEY,
      region: config.S3_REGION,
      pathStyle: true,
      transportAgent: idleCuttingAgent(useSSL, this.idleMs),
    };
  }

  /**
   * The S3 client, loaded on first use: it is most of what a service loads (its XML and MIME
   * tables), and a runtime agent opens its port before it needs storage.
   */
  private client(): Promise<Client> {
    this.clientLoaded ??= import("minio").then(({ Client }) => new Client(this.options));
    return this.clientLoaded;
  }

  /** Runs one request, again after a pause while the store is unreachable (see DEFAULT_RETRY). */
  async withRetry<T>(request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request();
      } catch (error) {
        const delay = this.retry.delaysMs[attempt];
        if (delay === undefined || !isTransientStorageError(error)) throw error;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async ensureBucket(): Promise<void> {
    if (await (await this.client()).bucketExists(this.bucket)) return;
    try {
      await (await this.client()).makeBucket(this.bucket);
    } catch (error) {
      // Another service may have created it between the check and the call.
      const code = (error as { code?: string }).code;
      if (code !== "BucketAlreadyOwnedByYou" && code !== "BucketAlreadyExists") throw error;
    }
  }

  /** Answers when the store is reachable and the bucket exists; used by health checks. */
  async ping(): Promise<void> {
    if (!(await (await this.client()).bucketExists(this.bucket))) throw new Error(`bucket ${this.bucket} does not exist`);
  }

  async putBuffer(key: string, data: Buffer | string, contentType = "application/octet-stream"): Promise<PutResult> {
    const buffer = typeof data === "string" ? Buffer.from(data) : data;
    await this.withRetry(async () => (await this.client()).putObject(this.bucket, key, buffer, buffer.length, { "Content-Type": contentType }));
    return { key, bytes: buffer.length };
  }

  async putStream(key: string, stream: Readable, contentType = "application/octet-stream"): Promise<PutResult> {
    const headers = { "Content-Type": contentType };
    let uploadId: string | undefined;
    const etags: { part: number; etag: string }[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let total = 0;

    const flushPart = async () => {
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      uploadId ??= await this.withRetry(async () => (await this.client()).initiateNewMultipartUpload(this.bucket, key, headers));
      const part = etags.length + 1;
      const id = uploadId;
      const { etag } = await this.withRetry(async () =>
        (await this.client()).uploadPart({ bucketName: this.bucket, objectName: key, uploadID: id, partNumber: part, headers: {} }, body),
      );
      etags.push({ part, etag });
    };

    try {
      for await (const chunk of stream) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        pending.push(buffer);
        pendingBytes += buffer.length;
        total += buffer.length;
        if (pendingBytes >= PART_SIZE) await flushPart();
      }
      if (uploadId === undefined) {
        const body = Buffer.concat(pending, pendingBytes);
        await this.withRetry(async () => (await this.client()).putObject(this.bucket, key, body, pendingBytes, headers));
      } else {
        if (pendingBytes > 0) await flushPart();
        const id = uploadId;
        await this.withRetry(async () => (await this.client()).completeMultipartUpload(this.bucket, key, id, etags));
      }
      return { key, bytes: total };
    } catch (error) {
      if (uploadId !== undefined) await (await this.client()).abortMultipartUpload(this.bucket, key, uploadId).catch(() => undefined);
      throw error;
    }
  }

  async getStream(key: string): Promise<Readable> {
    try {
      const body = await this.withRetry(async () => (await this.client()).getObject(this.bucket, key));
      // A body whose connection is cut fails as "aborted"; the stall is what happened.
      const socket = (body as Partial<IncomingMessage>).socket;
      if (socket) {
        const stalled = () => body.destroy(new StorageStalledError(`the download of ${key} stalled: no data for ${this.idleMs / 1000} s`));
        socket.once("timeout", stalled);
        body.once("close", () => socket.off("timeout", stalled));
      }
      return body;
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  async getText(key: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.getStream(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const stat = await this.withRetry(async () => (await this.client()).statObject(this.bucket, key));
      return { size: stat.size };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    await this.withRetry(async () => (await this.client()).copyObject(this.bucket, toKey, `/${this.bucket}/${fromKey}`));
  }

  async remove(key: string): Promise<void> {
    await this.withRetry(async () => (await this.client()).removeObject(this.bucket, key));
  }

  /** A URL that fetches `key` without credentials for `expirySeconds` (for plain HTTP clients such as curl). */
  async presignedGetUrl(key: string, expirySeconds = 600): Promise<string> {
    return (await this.client()).presignedGetObject(this.bucket, key, expirySeconds);
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.listWithTimes(prefix)).map((object) => object.key);
  }

  /** The keys under `prefix`, each with when it was last written. */
  async listWithTimes(prefix: string): Promise<{ key: string; lastModified: Date }[]> {
    const objects: { key: string; lastModified: Date }[] = [];
    for await (const item of (await this.client()).listObjects(this.bucket, prefix, true)) {
      if (item.name) objects.push({ key: item.name, lastModified: new Date(item.lastModified) });
    }
    return objects;
  }
}
