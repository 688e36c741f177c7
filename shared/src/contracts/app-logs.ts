import { z } from "zod";

/** Where an app log line came from: the app's own pipes, or its agent telling what it did to the app. */
export const appLogStreams = ["stdout", "stderr", "system"] as const;
export type AppLogStreamName = (typeof appLogStreams)[number];

/** One line of an app's log, as agents write it and the API answers it. */
export const appLogEntrySchema = z.object({
  time: z.string(),
  instanceId: z.string(),
  /** The release the instance ran (or was moving to) when the line was written; null before any. */
  release: z.number().int().nullable(),
  stream: z.enum(appLogStreams),
  line: z.string(),
});
export type AppLogEntry = z.infer<typeof appLogEntrySchema>;

/** The plain-text form: `<time> <instanceId> <stream>: <line>`. */
export const formatAppLogLine = (entry: AppLogEntry) => `${entry.time} ${entry.instanceId} ${entry.stream}: ${entry.line}`;

/** An app log stream id (`<ms>-<seq>`), as `since` and SSE's Last-Event-ID carry it. */
export const APP_LOG_ID_PATTERN = /^\d{1,15}(-\d{1,15})?$/;
