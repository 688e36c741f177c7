import { z } from "zod";
import { buildIdSchema } from "./ids";

/**
 * The records Slipway keeps in Redis. Ids are plain strings here: the repositories' keys check
 * them on the way in, and a read must accept every record written so far.
 */

/** How an app's instances decide a new process may take traffic; the agent's HEALTH_PATH/HEALTH_TIMEOUT_S when unset. */
export const healthCheckSchema = z
  .object({
    path: z.string().startsWith("/").max(2048),
    /** Bounded so a rollout turn (whose lease outlives one health check) cannot be held for hours. */
    timeoutS: z.number().int().min(1).max(600),
    /** When set, a 2xx/3xx answer must also contain this text. */
    expectText: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type HealthCheck = z.infer<typeof healthCheckSchema>;

export const appRecordSchema = z.object({
  name: z.string(),
  env: z.record(z.string()),
  buildEnv: z.record(z.string()),
  startupCommand: z.string().optional(),
  /** Runs once per release before any instance switches to it (else a Procfile `release:` line). */
  releaseCommand: z.string().optional(),
  healthCheck: healthCheckSchema.optional(),
  /** How many releases (and builds) garbage collection keeps; the service default when unset. */
  retention: z.number().int().optional(),
  /** Session affinity at the front door: a cookie keeps each client on one instance while it lives. */
  affinity: z.boolean().optional(),
  latestSourceSha256: z.string().optional(),
  /** Where the latest source is stored (`.tar.gz` or `.zip`): what a rebuild builds. */
  latestSourceKey: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type AppRecord = z.infer<typeof appRecordSchema>;

export const buildStatuses = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export type BuildStatus = (typeof buildStatuses)[number];
export const isTerminal = (status: BuildStatus) => status === "succeeded" || status === "failed" || status === "canceled";

export const artifactSchema = z.object({ key: z.string(), sha256: z.string(), bytes: z.number() });
export type Artifact = z.infer<typeof artifactSchema>;

export const buildRecordSchema = z.object({
  id: z.string(),
  app: z.string(),
  status: z.enum(buildStatuses),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  sourceSha256: z.string(),
  sourceKey: z.string(),
  deploy: z.boolean(),
  platform: z.string().optional(),
  platformVersion: z.string().optional(),
  artifact: artifactSchema.optional(),
  manifestKey: z.string().optional(),
  /**
   * Set by the worker that packed the output, before any release of it is announced: the
   * manifest's record of its output (`outputRecordSha256`), which storage alone cannot forge.
   */
  outputRecordSha256: z.string().optional(),
  release: z.number().int().optional(),
  error: z.string().optional(),
  /** Where the build's time went, in ms per phase: fetch, detect, hooks, restore cache, install, framework steps, save cache, pack, upload, publish. */
  phasesMs: z.record(z.number()).optional(),
});
export type Build = z.infer<typeof buildRecordSchema>;

/** `config`: the current build again, because the app's env, startupCommand or healthCheck changed. */
export const releaseReasons = ["build", "rollback", "manual", "config"] as const;
export type ReleaseReason = (typeof releaseReasons)[number];
export const rolloutStates = ["rolling", "complete", "failed"] as const;
export type RolloutState = (typeof rolloutStates)[number];

/** How a release's release command went, recorded by the one instance that ran it. */
export const releasePhaseSchema = z.object({
  state: z.enum(["succeeded", "failed"]),
  command: z.string(),
  /** Null when a signal or the timeout ended it. */
  exitCode: z.number().int().nullable(),
  instanceId: z.string(),
  finishedAt: z.string(),
  /** Why it failed, when not by its exit code alone: a timeout, a sandbox limit. */
  error: z.string().optional(),
  /** The last lines it printed (bounded); all of them are in the app log. */
  outputTail: z.string(),
});
export type ReleasePhase = z.infer<typeof releasePhaseSchema>;

export const releaseRecordSchema = z.object({
  version: z.number().int(),
  buildId: z.string(),
  createdAt: z.string(),
  reason: z.enum(releaseReasons),
  /** Set by the rollout across instances. */
  state: z.enum(rolloutStates).optional(),
  /** Set once the release command (if the release has one) has run. */
  releasePhase: releasePhaseSchema.optional(),
});
export type Release = z.infer<typeof releaseRecordSchema>;

/** What the worker that saved a dependency-cache layer knew of it: its sha256 and what it unpacks to (a restore stops past that). */
export const layerRecordSchema = z.object({
  sha256: z.string(),
  unpackedBytes: z.number().optional(),
  entries: z.number().optional(),
});
export type LayerRecord = z.infer<typeof layerRecordSchema>;

/** `apps/<app>/current-release.json`: lets agents restore while Redis is down. */
export const currentReleasePointerSchema = z.object({
  version: z.number().int().positive(),
  buildId: buildIdSchema,
  sha256: z.string(),
  createdAt: z.string(),
});
export type CurrentReleasePointer = z.infer<typeof currentReleasePointerSchema>;

/** `draining`: leaving the front door's upstreams before it stops; requests in flight finish. */
export const instanceStates = ["restoring", "starting", "running", "failed", "draining"] as const;
export type InstanceState = (typeof instanceStates)[number];

/** What an agent reports of its instance at each heartbeat. */
export const instanceReportSchema = z.object({
  instanceId: z.string(),
  release: z.number().int().positive().nullable(),
  buildId: z.string().nullable(),
  state: z.enum(instanceStates),
  /**
   * The release the instance's port serves now, whatever it is moving to (`release` while it
   * runs; the previous one while it restores or starts the next, or after a failed start): what
   * the front door routes by. Null while nothing serves.
   */
  servingRelease: z.number().int().positive().nullable().optional(),
  appPath: z.string().nullable(),
  lastHeartbeatAt: z.string(),
  pid: z.number().int().nullable().optional(),
  uptimeS: z.number().int().nonnegative().optional(),
  restarts: z.number().int().nonnegative().optional(),
  error: z.string().optional(),
  /** Where the instance runs, when a host agent runs it: the host, and the address and port its instance listens on. */
  host: z.string().optional(),
  address: z.string().optional(),
  port: z.number().int().optional(),
});
export type InstanceReport = z.infer<typeof instanceReportSchema>;

/**
 * Agents heartbeat every few seconds; a report older than this is from an instance that may be
 * gone: the API shows it as `unknown`, and a rollout does not wait for it.
 */
export const STALE_INSTANCE_MS = 30_000;

/** What a host agent says of its host at each heartbeat. */
export const hostRecordSchema = z.object({
  id: z.string(),
  address: z.string(),
  /** Instances it takes. */
  capacity: z.number().int().nonnegative(),
  memoryMb: z.number().int().nonnegative(),
  labels: z.record(z.string()).default({}),
  startedAt: z.string(),
});
export type HostRecord = z.infer<typeof hostRecordSchema>;

export const hostStates = ["ready", "draining", "lost"] as const;
export type HostState = (typeof hostStates)[number];

/** A host as the control plane sees it: its record, its state and the instances placed on it. */
export const hostStatusSchema = hostRecordSchema.extend({
  state: z.enum(hostStates),
  instances: z.array(z.object({ app: z.string(), instanceId: z.string() })),
  lastHeartbeatAt: z.string().nullable(),
});
export type HostStatus = z.infer<typeof hostStatusSchema>;
