import { z } from "zod";
import { appRecordSchema, buildRecordSchema, instanceReportSchema, instanceStates, releaseRecordSchema } from "./records";

/**
 * The records as the REST API documents them: what its clients (the CLI, the dashboard, the
 * tests) may rely on. The API's OpenAPI schemas are these.
 */

export const appResponseSchema = appRecordSchema.omit({ latestSourceKey: true }).extend({
  /** The current release's version; null before the first release. */
  currentRelease: z.number().int().nullable().optional(),
  /** The instances asked for (see PUT /v1/apps/:app/scale) and how many are placed on hosts. */
  instances: z.number().int().optional(),
  placed: z.number().int().optional(),
  /** Where the app answers at the front door. */
  url: z.string().optional(),
});
export type AppResponse = z.infer<typeof appResponseSchema>;

export const buildResponseSchema = buildRecordSchema.omit({ sourceKey: true, deploy: true, outputRecordSha256: true });
export type BuildResponse = z.infer<typeof buildResponseSchema>;

export const releaseResponseSchema = releaseRecordSchema;
export type ReleaseResponse = z.infer<typeof releaseResponseSchema>;

/** An instance whose last heartbeat is stale shows as `unknown`. */
export const instanceResponseSchema = instanceReportSchema.extend({ state: z.enum([...instanceStates, "unknown"]) });
export type InstanceResponse = z.infer<typeof instanceResponseSchema>;
