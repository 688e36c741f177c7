import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Redis } from "ioredis";
import { serviceEnv } from "../../test/harness/env";
import { blockingConnection, connectRedis, isRedisTimeout } from "../src/redis";

let redis: Redis;
beforeAll(() => {
  redis = connectRedis(serviceEnv().REDIS_URL!, { commandTimeout: 200 });
});
afterAll(() => redis.disconnect());

it("a blocking read on blockingConnection waits out its own BLOCK, past the commandTimeout of the connection it came from", async () => {
  const stream = `test-blocking-${randomUUID()}`;
  // On the connection with the timeout, the same read is cut short.
  const cut = await redis.xread("BLOCK", 600, "STREAMS", stream, "$").catch((error: unknown) => error);
  expect(isRedisTimeout(cut)).toBe(true);
  const blocking = blockingConnection(redis);
  try {
    expect(await blocking.xread("BLOCK", 600, "STREAMS", stream, "$")).toBeNull();
  } finally {
    blocking.disconnect();
  }
});
