import type { Redis } from "ioredis";
import { z } from "zod";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

const routerRecordSchema = z.object({
  /** Redis's clock when the router read the records its Caddy now serves. */
  snapshotAt: z.number(),
  /** Redis's clock when it last said so: a router silent for ROUTER_DEAD_MS is not waited for. */
  beatAt: z.number(),
});

/** A router that has not beaten this long is gone (stopped or cut off), and no drain waits for it. */
export const ROUTER_DEAD_MS = 10_000;

/** Redis's own clock in milliseconds: one clock for every process that compares times through Redis. */
export async function redisNow(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * What each router last gave its Caddy. An instance about to stop waits here until every live
 * router serves records read after the instance left them, so no front door still sends it
 * requests when it closes.
 */
export class RouterRepository {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RecordKeys = defaultKeys,
  ) {}

  now(): Promise<number> {
    return redisNow(this.redis);
  }

  /** Records that `routerId`'s Caddy serves the records read at `snapshotAt`. */
  async applied(routerId: string, snapshotAt: number): Promise<void> {
    await this.redis.hset(this.keys.routers, routerId, JSON.stringify({ snapshotAt, beatAt: await this.now() }));
  }

  async remove(routerId: string): Promise<void> {
    await this.redis.hdel(this.keys.routers, routerId);
  }

  /** True once every router that beat within ROUTER_DEAD_MS serves records read at or after `since`. */
  async allCaughtUp(since: number): Promise<boolean> {
    const now = await this.now();
    for (const raw of Object.values(await this.redis.hgetall(this.keys.routers))) {
      const record = routerRecordSchema.safeParse(safeJson(raw));
      if (!record.success || now - record.data.beatAt > ROUTER_DEAD_MS) continue;
      if (record.data.snapshotAt < since) return false;
    }
    return true;
  }

  /** Waits until allCaughtUp(since), or `timeoutMs`; false on the timeout. */
  async waitCaughtUp(since: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.allCaughtUp(since)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
