import type { Redis } from "ioredis";
import { layerRecordSchema, SHA256_PATTERN, type LayerRecord } from "../contracts/index";
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
    if (SHA256_PATTERN.test(text)) return { sha256: text };
    try {
      const layer = layerRecordSchema.safeParse(JSON.parse(text));
      return layer.success ? layer.data : undefined;
    } catch {
      return undefined;
    }
  }
}
