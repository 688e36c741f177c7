import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

/**
 * Names whose values are credentials: Slipway's own settings and the usual ones an app's env or
 * buildEnv carries. pino's paths match whole keys only (no `*_TOKEN`), hence a list;
 * shared/test/log.test.ts checks it covers every `*_KEY`, `*_TOKEN` and `*_SECRET` setting.
 */
const SECRET_NAMES = [
  "S3_ACCESS_KEY",
  "S3_SECRET_KEY",
  "API_TOKEN",
  "SLIPWAY_TOKEN",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "GITHUB_TOKEN",
  "NPM_TOKEN",
  "SECRET_KEY",
];

/** Where credentials can appear in a log line: request headers, and secrets up to two objects deep (`{ config }`, `{ job: { env } }`). */
const REDACTED_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  ...SECRET_NAMES.flatMap((name) => [name, `*.${name}`, `*.*.${name}`]),
];

/** One JSON line per event on stdout (or `destination`); `service` tells the processes of a stack apart. */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info", destination?: DestinationStream): Logger {
  const options = { name: service, level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACTED_PATHS } };
  return destination ? pino(options, destination) : pino(options);
}
