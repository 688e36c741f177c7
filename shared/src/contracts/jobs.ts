import { z } from "zod";
import { appNameSchema, buildIdSchema } from "./ids";

export const QueueName = { builds: "builds", maintenance: "maintenance" } as const;
export const JobName = { build: "build", gc: "gc" } as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

/**
 * Payload of a `build` job (queue `builds`): only what the build record does not hold. The
 * source and whether to deploy are the record's, read by the worker, so the two cannot disagree.
 */
export const buildJobSchema = z.object({
  buildId: buildIdSchema,
  app: appNameSchema,
  /** Rebuild without the dependency cache. */
  noCache: z.boolean().default(false),
  requestId: z.string().optional(),
});
export type BuildJob = z.infer<typeof buildJobSchema>;

/** BullMQ retry policy for builds: transient failures back off; permanent ones are marked unrecoverable by the worker. */
export const BUILD_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
} as const;

/** Payload of a `gc` job (queue `maintenance`): one app, or every app when absent. */
export const gcJobSchema = z.object({ app: appNameSchema.optional() });
export type GcJob = z.infer<typeof gcJobSchema>;

/** What one app's collection kept and removed: a `gc` job's result, and the API's answer to a collection it ran. */
export const gcReportSchema = z.object({
  app: z.string(),
  retain: z.number().int(),
  keptBuilds: z.array(z.string()),
  deletedBuilds: z.array(z.string()),
  deletedSources: z.array(z.string()),
  deletedObjects: z.number().int(),
});
export type GcReport = z.infer<typeof gcReportSchema>;

/**
 * The scheduled collection of every app. One scheduler id for all workers, so they agree on one
 * schedule; a failed run is not retried, the next one comes anyway.
 */
export const GC_SCHEDULE = { id: "gc-all-apps", jobOptions: { removeOnComplete: 100, removeOnFail: 100 } } as const;
