import { Redis, type RedisOptions } from "ioredis";

/**
 * A Redis connection for Slipway's records and for BullMQ. `maxRetriesPerRequest: null` is what
 * BullMQ workers require, and lets every caller ride out a Redis restart instead of failing.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...options });
}
