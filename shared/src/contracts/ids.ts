import { z } from "zod";

/** App names are DNS-label-like so they are safe in Redis keys, object keys, paths and URLs. */
export const APP_NAME_PATTERN = /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
/**
 * The API names builds with UUIDs; other producers (Oryx OperationIds, tests) use other
 * alphanumeric ids. Never a `:`, so an id cannot name another Redis key (`<id>:log`).
 */
export const BUILD_ID_PATTERN = /^[A-Za-z0-9-]{8,64}$/;
/** An agent's INSTANCE_ID: a hash field and a label, never part of a key. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** A custom domain: lower-case DNS labels, at least two, no wildcard, no trailing dot. */
export const DOMAIN_PATTERN = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const appNameSchema = z.string().regex(APP_NAME_PATTERN);
export const buildIdSchema = z.string().regex(BUILD_ID_PATTERN);
export const sha256Schema = z.string().regex(SHA256_PATTERN);
