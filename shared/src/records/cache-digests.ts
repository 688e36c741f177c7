import type { Redis } from "ioredis";
import { redisKeys } from "./keys";

/**
 * The sha256 of each dependency-cache layer as the worker that saved it packed it. Layers live in
 * object storage, which a build holding stolen storage credentials could rewrite; this record lives
 * in Redis, which only Slipway's services can write, so a restore trusts a layer only when its bytes
 * hash to it.
 */
export class CacheDigestRepository {
  constructor(private readonly redis: Redis) {}

  async record(app: string, objectKey: string, sha256: string): Promise<void> {
    await this.redis.hset(redisKeys.cacheDigests(app), objectKey, sha256);
  }

  async get(app: string, objectKey: string): Promise<string | undefined> {
    return (await this.redis.hget(redisKeys.cacheDigests(app), objectKey)) ?? undefined;
  }
}
