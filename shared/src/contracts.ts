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
export const appNameSchema = z.string().regex(APP_NAME_PATTERN);
const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);
export const buildIdSchema = z.string().regex(BUILD_ID_PATTERN);

export const QueueName = { builds: "builds", maintenance: "maintenance" } as const;
export const JobName = { build: "build", gc: "gc" } as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

/** Payload of a `gc` job: one app, or every app when absent. */
export const gcJobSchema = z.object({ app: appNameSchema.optional() });
export type GcJob = z.infer<typeof gcJobSchema>;

/** Payload of a `build` job; the build record in Redis holds everything else. */
export const buildJobSchema = z.object({
  buildId: buildIdSchema,
  app: appNameSchema,
  sourceKey: z.string().min(1),
  sourceSha256: sha256Schema,
  deploy: z.boolean(),
  /** Rebuild without the dependency cache. */
  noCache: z.boolean().default(false),
  requestId: z.string().optional(),
});
export type BuildJob = z.infer<typeof buildJobSchema>;

/** Redis pub/sub channel on which runtime agents hear about new releases. */
export const RELEASE_CHANNEL = "slipway:events:release";

/** Redis pub/sub channel on which build workers hear that a build was canceled. */
export const CANCEL_CHANNEL = "slipway:events:cancel";
export const cancelEventSchema = z.object({ buildId: buildIdSchema });

export const releaseEventSchema = z.object({
  app: appNameSchema,
  version: z.number().int().positive(),
  buildId: buildIdSchema,
});
export type ReleaseEvent = z.infer<typeof releaseEventSchema>;

export const buildStatuses = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export type BuildStatus = (typeof buildStatuses)[number];
export const isTerminal = (status: BuildStatus) => status === "succeeded" || status === "failed" || status === "canceled";

export interface Artifact {
  key: string;
  sha256: string;
  bytes: number;
}

export interface Build {
  id: string;
  app: string;
  status: BuildStatus;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  sourceSha256: string;
  sourceKey: string;
  deploy: boolean;
  platform?: string;
  platformVersion?: string;
  artifact?: Artifact;
  manifestKey?: string;
  release?: number;
  error?: string;
}

export const releaseReasons = ["build", "rollback", "manual"] as const;
export type ReleaseReason = (typeof releaseReasons)[number];

export interface Release {
  version: number;
  buildId: string;
  createdAt: string;
  reason: ReleaseReason;
  /** Set by the rollout across instances. */
  state?: "rolling" | "complete" | "failed";
}

/** `apps/<app>/current-release.json`: lets agents restore while Redis is down. */
export const currentReleasePointerSchema = z.object({
  version: z.number().int().positive(),
  buildId: buildIdSchema,
  sha256: z.string(),
  createdAt: z.string(),
});
export type CurrentReleasePointer = z.infer<typeof currentReleasePointerSchema>;

export const instanceStates = ["restoring", "starting", "running", "failed"] as const;
export type InstanceState = (typeof instanceStates)[number];

export const instanceReportSchema = z.object({
  instanceId: z.string(),
  release: z.number().int().positive().nullable(),
  buildId: z.string().nullable(),
  state: z.enum(instanceStates),
  appPath: z.string().nullable(),
  lastHeartbeatAt: z.string(),
  pid: z.number().int().nullable().optional(),
  uptimeS: z.number().int().nonnegative().optional(),
  restarts: z.number().int().nonnegative().optional(),
  error: z.string().optional(),
});
export type InstanceReport = z.infer<typeof instanceReportSchema>;
