import type { Redis } from "ioredis";
import { RELEASE_CHANNEL, ROLLOUT_CHANNEL, subscribe, type Logger } from "@slipway/shared";

export interface Subscription {
  close(): void;
}

export interface AppEventHandlers {
  /** A release of the app was announced. */
  onRelease(version: number): void;
  /** An instance of the app gave its rollout turn back: a waiting instance may take one now. */
  onTurnFreed(): void;
}

/** Hands the app's release and rollout events, from one subscriber connection, to `handlers`. */
export function subscribeToAppEvents(redis: Redis, app: string, logger: Logger, handlers: AppEventHandlers): Subscription {
  // The subscriber waits out Redis outages (queues its SUBSCRIBE) instead of failing fast.
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
  subscriber.on("error", () => undefined); // reconnects by itself; the reconcile timer covers the gap
  const failed = (error: unknown) => logger.warn({ err: error }, "could not subscribe to release events");
  void subscribe(subscriber, RELEASE_CHANNEL, (event) => {
    if (event.app === app) handlers.onRelease(event.version);
  }).catch(failed);
  void subscribe(subscriber, ROLLOUT_CHANNEL, (event) => {
    if (event.app === app) handlers.onTurnFreed();
  }).catch(failed);
  return { close: () => subscriber.disconnect() };
}
