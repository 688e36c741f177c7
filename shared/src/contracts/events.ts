import { z } from "zod";
import { appNameSchema, buildIdSchema } from "./ids";

/** Redis pub/sub channel on which runtime agents hear about new releases. */
export const RELEASE_CHANNEL = "slipway:events:release";
export const releaseEventSchema = z.object({
  app: appNameSchema,
  version: z.number().int().positive(),
  buildId: buildIdSchema,
});
export type ReleaseEvent = z.infer<typeof releaseEventSchema>;

/** Redis pub/sub channel on which build workers hear that a build was canceled. */
export const CANCEL_CHANNEL = "slipway:events:cancel";
export const cancelEventSchema = z.object({ buildId: buildIdSchema });
export type CancelEvent = z.infer<typeof cancelEventSchema>;

/** Redis pub/sub channel on which runtime agents hear that an instance gave its rollout turn back. */
export const ROLLOUT_CHANNEL = "slipway:events:rollout";
export const rolloutEventSchema = z.object({ app: appNameSchema, version: z.number().int().positive() });
export type RolloutEvent = z.infer<typeof rolloutEventSchema>;

/**
 * Redis pub/sub channel on which host agents hear that their placements changed: a hint (the
 * message is the host's id, published by the placement script), each agent also polls.
 */
export const PLACEMENT_CHANNEL = "slipway:events:placement";

/**
 * Redis pub/sub channel on which routers hear that what an app's front door routes to may have
 * changed (an instance's state, the app's domains or settings): a hint, routers also resync.
 */
export const ROUTES_CHANNEL = "slipway:events:routes";
export const routesEventSchema = z.object({ app: appNameSchema });
export type RoutesEvent = z.infer<typeof routesEventSchema>;

const eventSchemas = {
  [RELEASE_CHANNEL]: releaseEventSchema,
  [CANCEL_CHANNEL]: cancelEventSchema,
  [ROLLOUT_CHANNEL]: rolloutEventSchema,
  [ROUTES_CHANNEL]: routesEventSchema,
} as const;
export type Channel = keyof typeof eventSchemas;
export type EventOf<C extends Channel> = z.infer<(typeof eventSchemas)[C]>;

/** What publishing needs of a Redis connection (an ioredis client fits). */
export interface EventPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

/** What subscribing needs of a Redis connection: one in subscriber mode, of the caller's own. */
export interface EventSubscriber {
  subscribe(channel: string): Promise<unknown>;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
}

export async function publish<C extends Channel>(redis: EventPublisher, channel: C, event: EventOf<C>): Promise<void> {
  await redis.publish(channel, JSON.stringify(event));
}

/**
 * Hands each well-formed event on `channel` to `onEvent`. Anything that can reach Redis can
 * publish, so a message that is not JSON or does not fit the channel's schema is dropped.
 */
export function subscribe<C extends Channel>(redis: EventSubscriber, channel: C, onEvent: (event: EventOf<C>) => void): Promise<unknown> {
  redis.on("message", (from, message) => {
    if (from !== channel) return;
    const event = eventSchemas[channel].safeParse(parseJson(message));
    // TypeScript cannot narrow the union of schemas by the generic channel; the lookup above did.
    if (event.success) onEvent(event.data as EventOf<C>);
  });
  return redis.subscribe(channel);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
