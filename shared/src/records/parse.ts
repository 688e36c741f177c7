import type { z } from "zod";

/** A record read from Redis does not fit its schema: written by something other than Slipway's services. */
export class CorruptRecordError extends Error {
  override name = "CorruptRecordError";
}

/** Checks a record read from Redis against its schema, naming the record and the first misfit when it fails. */
export function parseRecord<T extends z.ZodTypeAny>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new CorruptRecordError(`${what} is malformed: ${issue.path.join(".") || "record"} ${issue.message}`);
}

/** The same for a record stored as JSON text. */
export function parseJsonRecord<T extends z.ZodTypeAny>(schema: T, text: string, what: string): z.output<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CorruptRecordError(`${what} is malformed: not JSON`);
  }
  return parseRecord(schema, value, what);
}
