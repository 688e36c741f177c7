import type { Redis } from "ioredis";
import { RELEASE_CHANNEL, subscribe, type Logger } from "@slipway/shared";

export interface Subscription {
  close(): void;
}

/** Calls `onRelease` for each release of `app` announced on the release channel. */
export function subscribeToReleases(redis: Redis, app: string, logger: Logger, onRelease: (version: number) => void): Subscription {
  // The subscriber waits out Redis outages (queues its SUBSCRIBE) instead of failing fast.
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
  subscriber.on("error", () => undefined); // reconnects by itself; the reconcile timer covers the gap
  void subscribe(subscriber, RELEASE_CHANNEL, (event) => {
    if (event.app === app) onRelease(event.version);
  }).catch((error) => logger.warn({ err: error }, "could not subscribe to release events"));
  return { close: () => subscriber.disconnect() };
}
