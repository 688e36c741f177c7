import type { Redis } from "ioredis";
import { RELEASE_CHANNEL, releaseEventSchema, type Logger } from "@slipway/shared";

export interface Subscription {
  close(): void;
}

/** Calls `onRelease` for each release of `app` announced on the release channel. */
export function subscribeToReleases(redis: Redis, app: string, logger: Logger, onRelease: (version: number) => void): Subscription {
  // The subscriber waits out Redis outages (queues its SUBSCRIBE) instead of failing fast.
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  subscriber.on("message", (_channel, message) => {
    const event = releaseEventSchema.safeParse(safeJson(message));
    if (event.success && event.data.app === app) onRelease(event.data.version);
  });
  subscriber.on("error", () => undefined); // reconnects by itself; the reconcile timer covers the gap
  void subscriber.subscribe(RELEASE_CHANNEL).catch((error) => logger.warn({ err: error }, "could not subscribe to release events"));
  return { close: () => subscriber.disconnect() };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
