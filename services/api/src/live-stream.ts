import type { Response } from "express";
import type { Redis } from "ioredis";
import { blockingConnection } from "@slipway/shared";
import type { ApiContext } from "./context";

/** An open streaming answer and the Redis connection its blocking reads wait on. */
export interface LiveStream {
  /** The follower's own connection: a blocking read holds the one it runs on. */
  blocking: Redis;
  /** Whether the reader went away: a follow stops at its next wait. */
  closed(): boolean;
  /** Releases the connection unless the reader's going already did. */
  release(): void;
}

/**
 * Starts a streamed answer (headers flushed at once, no proxy buffering) and gives it a Redis
 * connection of its own that is dropped the moment the reader goes, which also ends a blocking
 * read in progress.
 */
export function openLiveStream(ctx: ApiContext, res: Response, contentType: string): LiveStream {
  res.status(200);
  res.setHeader("Content-Type", contentType);
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("X-Accel-Buffering", "no");
  res.flushHeaders();

  const blocking = blockingConnection(ctx.redis);
  let closed = false;
  res.on("close", () => {
    closed = true;
    blocking.disconnect();
  });
  return {
    blocking,
    closed: () => closed,
    release: () => {
      if (!closed) blocking.disconnect();
    },
  };
}
