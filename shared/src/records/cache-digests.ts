import type { Redis } from "ioredis";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

/**
 * The sha256 of each dependency-cache layer as the worker that saved it packed it. Layers live in
 * object storage, which a build holding stolen storage credentials could rewrite; this record lives
 * in Redis, which only Slipway's services can write, so a restore trusts a layer only when its bytes
 * hash to it.
 */
export class CacheDigestRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  async record(app: string, objectKey: string, layer: LayerRecord): Promise<void> {
    await this.redis.hset(this.redisKeys.cacheDigests(app), objectKey, JSON.stringify(layer));
  }

  async get(app: string, objectKey: string): Promise<LayerRecord | undefined> {
    const text = await this.redis.hget(this.redisKeys.cacheDigests(app), objectKey);
    if (!text) return undefined;
    // Records from before sizes were kept hold the bare sha256.
    if (/^[0-9a-f]{64}$/.test(text)) return { sha256: text };
    try {
      return JSON.parse(text) as LayerRecord;
    } catch {
      return undefined;
    }
  }
}

/** What the saving worker knew of a layer: its sha256 and what it unpacks to (a restore stops past that). */
export interface LayerRecord {
  sha256: string;
  unpackedBytes?: number;
  entries?: number;
}
