import { Redis, type RedisOptions } from "ioredis";

/**
 * A Redis connection for Slipway's records and for BullMQ. `maxRetriesPerRequest: null` is what
 * BullMQ workers require, and lets every caller ride out a Redis restart instead of failing.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true, lazyConnect: false, ...options });
  // Connection errors surface on the commands that hit them, and ioredis reconnects by itself;
  // without a listener it would also print each one to stderr as "Unhandled error event".
  redis.on("error", () => undefined);
  return redis;
}

/**
 * A connection of `redis`'s own for blocking reads (`XREAD BLOCK`): each read's BLOCK argument
 * bounds its wait, which a `commandTimeout` would cut short.
 */
export function blockingConnection(redis: Redis): Redis {
  const blocking = redis.duplicate({ commandTimeout: undefined });
  blocking.on("error", () => undefined);
  return blocking;
}

/** Whether `error` is ioredis giving up on a command unanswered for its connection's `commandTimeout`. */
export function isRedisTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === "Command timed out";
}
