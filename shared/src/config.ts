import os from "node:os";
import path from "node:path";
import { isLoopbackHost } from "./local-token";
import { z } from "zod";
import { APP_NAME_PATTERN, INSTANCE_ID_PATTERN } from "./contracts/index";

/** Thrown when the environment does not describe a usable configuration; the message is one line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const url = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(" or ")})`);

/** The worker's variables a build may see: package-index settings, never credentials of Slipway's. */
/** The build worker's scratch directory unless SCRATCH_DIR says otherwise; its healthcheck looks there too. */
export const DEFAULT_SCRATCH_DIR = "/tmp/slipway/build";

export const PASS_THROUGH = ["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_TRUSTED_HOST", "npm_config_registry"] as const;
const passThroughShape = Object.fromEntries(PASS_THROUGH.map((name) => [name, z.string().optional()])) as Record<(typeof PASS_THROUGH)[number], z.ZodOptional<z.ZodString>>;

const port = z.coerce.number().int().min(1).max(65535);
/** A port for `GET /metrics`, or 0 for none. */
const metricsPort = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

/** S3_IDLE_TIMEOUT_S unless set; also what a store built from a hand-made config (a test's, say) uses. */
export const DEFAULT_S3_IDLE_TIMEOUT_S = 30;

const storageShape = {
  S3_ENDPOINT: url(["http:", "https:"]),
  S3_ACCESS_KEY: z.string().min(1),
  S3_SECRET_KEY: z.string().min(1),
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid bucket name").default("slipway"),
  S3_REGION: z.string().min(1).default("us-east-1"),
  /**
   * A storage connection that moves no byte for this long is cut and the request fails (retried
   * when it can be): without it a stalled store or a half-open connection holds a restore or an
   * upload for ever, and with it an agent's stop waiting behind it.
   */
  S3_IDLE_TIMEOUT_S: positiveInt.default(DEFAULT_S3_IDLE_TIMEOUT_S),
};

/**
 * Untrusted code (builds, apps) runs in a bubblewrap sandbox as its own unprivileged uid. `off` is
 * an operator's explicit choice for machines that cannot run one, and is logged loudly.
 */
const sandboxShape = {
  SANDBOX: z.enum(["on", "off"]).default("on"),
  /** Sandboxes take host uids from this base upwards (65,536 of them): no account should own one. */
  SANDBOX_UID_BASE: z.coerce.number().int().min(1000).max(2 ** 31 - 65_536).default(200_000),
};

/** Garbage collection, run by the API (on demand) and the workers (on a schedule). */
const gcShape = {
  /** Releases and builds garbage collection keeps per app, unless the app sets its own `retention`. */
  GC_RETAIN: positiveInt.default(10),
  /**
   * A source stored this recently is never collected: its build may not be recorded yet (an
   * upload is stored first, then its build), and a collection running meanwhile would see it
   * unreferenced.
   */
  GC_SOURCE_GRACE_S: z.coerce.number().int().nonnegative().default(600),
};

const commonShape = {
  REDIS_URL: url(["redis:", "rediss:"]),
  /** Prefix of every Redis key, queues and records alike; separate prefixes give separate stacks on one Redis. */
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]{1,64}$/).default("slipway"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  ...storageShape,
};

/** The control plane's placement of instances on hosts (the API places; host agents heartbeat). */
const placementShape = {
  /** A host silent this long is `lost`: its instances are placed on the others. */
  HOST_DEAD_S: positiveInt.default(15),
};

/** Where apps answer: the API shows each app's URL from these, the router gives them to Caddy. */
const frontDoorShape = {
  /** Every app answers at `<app>.<SLIPWAY_DOMAIN>`; its wildcard DNS record points at the front door. */
  SLIPWAY_DOMAIN: z
    .string()
    .regex(/^(?=.{1,200}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, "must be a lower-case domain name")
    .default("localhost"),
  FRONT_DOOR_HTTP_PORT: port.default(80),
  /** Set: the front door also serves HTTPS here (certificates from ACME with TLS_EMAIL, else Caddy's internal CA), and apps' URLs are https. */
  FRONT_DOOR_HTTPS_PORT: port.optional(),
};

/** The most instances one app may ask for. */
export const MAX_APP_INSTANCES = 100;

const apiSchema = z.object({
  ...commonShape,
  ...placementShape,
  ...frontDoorShape,
  /** The instances a new app gets. */
  DEFAULT_INSTANCES: z.coerce.number().int().min(0).max(MAX_APP_INSTANCES).default(1),
  API_PORT: port.default(8080),
  API_HOST: z.string().default("0.0.0.0"),
  API_TOKEN: z.string().min(1).optional(),
  /** `1`: the API may listen beyond loopback without API_TOKEN, open to whoever reaches it (a trusted network only). */
  API_INSECURE: z.enum(["0", "1"]).optional(),
  /** Largest accepted source upload: 512 MiB by default, as the REST contract documents (413 above it). */
  MAX_SOURCE_BYTES: positiveInt.default(512 * 1024 * 1024),
  ...gcShape,
  /** Admission control: new builds get 429 while this many wait in the queue. */
  MAX_QUEUED_BUILDS: positiveInt.default(500),
  /**
   * A request whose Redis command goes unanswered this long (Redis down or stalled) gets 503
   * `redis_unavailable` instead of waiting for ever; a Redis restart shorter than this is ridden out.
   */
  REDIS_COMMAND_TIMEOUT_S: positiveInt.default(10),
  /** The dashboard as `npm run build` bundles it; unset, the API package's own dist/dashboard. */
  DASHBOARD_DIR: z.string().startsWith("/", "must be an absolute path").optional(),
  /** Each app's git repository (`<app>.git`), served at `/git/<app>.git`: on this API's own disk. */
  GIT_ROOT: z.string().startsWith("/", "must be an absolute path").default("/var/lib/slipway/git"),
});

const workerSchema = z.object({
  ...commonShape,
  ...sandboxShape,
  /** Memory one build may use (its whole sandbox); past it the build fails as out of memory. */
  BUILD_MEMORY_MB: positiveInt.default(4096),
  /** Processes one build may have at once: a fork bomb fails its build, not the worker. */
  BUILD_MAX_PROCESSES: positiveInt.default(1024),
  /**
   * Where tools builds need beyond the image (uv, Poetry, other Node versions) are installed once
   * per host, read-only to builds.
   */
  TOOLS_DIR: z.string().min(1).default("/var/cache/slipway/tools"),
  /**
   * A directory of Python installations (pyenv's `versions/`, say): each `<dir>/*\/bin/python3`
   * is offered to builds beside the `python3` and `python3.X` on the worker's PATH.
   */
  PYTHON_INSTALLS_DIR: z.string().min(1).optional(),
  /** The largest single file a build may write (the kernel's RLIMIT_FSIZE): a disk-filling file fails its build. */
  BUILD_MAX_FILE_MB: positiveInt.default(4096),
  WORKER_CONCURRENCY: positiveInt.default(1),
  BUILD_TIMEOUT_S: positiveInt.default(900),
  /**
   * How build output is compressed. zstd by default: it packs and unpacks several times faster
   * than gzip at a similar or smaller size (bench/pack), which every build and every instance
   * restore pays for; gzip for runtimes without the zstd command.
   */
  ARTIFACT_COMPRESSION: z.enum(["zstd", "gzip"]).default("zstd"),
  /** A source that unpacks larger than this fails its build (a zip bomb must not fill the disk). */
  MAX_UNPACKED_BYTES: positiveInt.default(2 * 1024 * 1024 * 1024),
  /** A source with more entries than this fails its build. */
  MAX_SOURCE_FILES: positiveInt.default(200_000),
  /** A build whose packed output is larger than this fails instead of filling storage. */
  MAX_OUTPUT_BYTES: positiveInt.default(4 * 1024 * 1024 * 1024),
  ...gcShape,
  /** How often a worker collects old artifacts and sources of every app (0 turns the schedule off). */
  GC_INTERVAL_S: z.coerce.number().int().nonnegative().default(3600),
  /** On SIGTERM, running builds get this long to finish before they are handed back to the queue. */
  SHUTDOWN_GRACE_S: positiveInt.default(60),
  /**
   * A job's lock lasts this long and is renewed while the worker lives; a worker killed outright
   * has its job picked up by another one within about twice this.
   */
  WORKER_LOCK_S: positiveInt.default(30),
  /** Builds run in `<SCRATCH_DIR>/<buildId>`; the manifest records that path so agents can relocate the venv. */
  SCRATCH_DIR: z.string().min(1).default(DEFAULT_SCRATCH_DIR),
  /** How often a running worker that reaches Redis says so (the container healthcheck reads it). */
  HEARTBEAT_S: positiveInt.default(10),
  ...passThroughShape,
});

const agentSchema = z.object({
  ...commonShape,
  ...sandboxShape,
  /** Memory the app may use; past it the app is killed and restarted like a crash, with that reason. */
  APP_MEMORY_MB: positiveInt.default(2048),
  /** Processes the app may have at once. */
  APP_MAX_PROCESSES: positiveInt.default(1024),
  APP: z.string().regex(APP_NAME_PATTERN, "must be a valid app name"),
  INSTANCE_ID: z.string().regex(INSTANCE_ID_PATTERN, "must be 1-64 of [A-Za-z0-9._-]"),
  PORT: port,
  RUNTIME_ROOT: z.string().min(1),
  /**
   * Where the host's agents extract each release once, for their instances to lie over or
   * hard-link copies from: shared by every agent whose RUNTIME_ROOT is on this host (and on the
   * same filesystem, or each copy is a full copy). Unset, `host-cache` beside RUNTIME_ROOT.
   */
  HOST_CACHE_DIR: z.string().startsWith("/", "must be an absolute path").optional(),
  /**
   * `auto`: a release directory is the upper directory of an overlay over the host cache's tree
   * (nothing copied; the whole release is seen inside the app's sandbox) wherever a sandbox can
   * mount one, else a hard-link copy. `copy`: always the copy (the whole release on the host).
   */
  RELEASE_LAYOUT: z.enum(["auto", "copy"]).default("auto"),
  /**
   * Where the host's agents claim their apps' sandbox uids, one per instance: shared by every
   * agent on this host. Unset, `sandbox-uids` beside RUNTIME_ROOT.
   */
  SANDBOX_UID_DIR: z.string().startsWith("/", "must be an absolute path").optional(),
  HEALTH_PATH: z.string().startsWith("/").default("/"),
  HEALTH_TIMEOUT_S: positiveInt.default(30),
  /** A release command (migrations) still running after this long is stopped and fails its release. */
  RELEASE_COMMAND_TIMEOUT_S: positiveInt.default(600),
  RECONCILE_INTERVAL_S: positiveInt.default(30),
  /** How often an instance looks for files its app wrote under APP_PATH (lost at the next release) to warn of them once. */
  APP_PATH_WRITES_CHECK_S: positiveInt.default(60),
  KEEP_RELEASES: positiveInt.default(2),
  /** How many of an app's instances may switch releases at once (after the first, which goes alone). */
  MAX_UNAVAILABLE: positiveInt.default(1),
  /**
   * How long a release move waits for Redis to answer about its rollout turn or its release
   * command before it fails (and is tried again at the next reconcile): never does it switch
   * without its turn or start without its release command.
   */
  COORDINATION_TIMEOUT_S: positiveInt.default(60),
  /**
   * A release whose artifact unpacks larger than this, or to more entries, fails to restore
   * (whatever its manifest records): the caps for artifacts that record no size, as Oryx's do.
   */
  MAX_RESTORE_BYTES: positiveInt.default(8 * 1024 * 1024 * 1024),
  MAX_RESTORE_ENTRIES: positiveInt.default(500_000),
  /**
   * The chunk-verifying downloader for artifacts the worker pinned (slipway-fetch, built from
   * services/runtime-agent/fetch). Unset, the one beside the compiled agent when it is there;
   * `node` restores with node alone, as it does when there is none.
   */
  FETCH_HELPER: z.union([z.literal("node"), z.string().startsWith("/", "must be an absolute path or `node`")]).optional(),
  /** The app's log (every instance's lines together) keeps about this many lines... */
  APP_LOG_MAX_LINES: positiveInt.default(10_000),
  /** ...and none older than this. */
  APP_LOG_MAX_AGE_S: positiveInt.default(86_400),
  /**
   * Set by a host agent for the instances it runs: the host (and its address) the instance's
   * reports name, and that a report is refused for once the instance was placed elsewhere.
   */
  HOST_ID: z.string().regex(INSTANCE_ID_PATTERN, "must be 1-64 of [A-Za-z0-9._-]").optional(),
  HOST_ADDRESS: z.string().min(1).optional(),
});

/** A range `20000-20999` or a list `8081,8082`, as ports. */
const portSet = z.string().transform((value, ctx) => {
  const ports = new Set<number>();
  for (const part of value.split(",").map((p) => p.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    const from = Number(range?.[1]);
    const to = range?.[2] === undefined ? from : Number(range[2]);
    if (!range || from < 1 || to > 65535 || from > to || to - from > 65_535) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be a port range like 20000-20999 or a list like 8081,8082 (got "${value}")` });
      return z.NEVER;
    }
    for (let p = from; p <= to; p++) ports.add(p);
  }
  return [...ports];
});

const hostSchema = agentSchema.omit({ APP: true, INSTANCE_ID: true, PORT: true, HOST_ID: true, HOST_ADDRESS: true }).extend({
  ...placementShape,
  /** Defaults to the machine's hostname (made a valid id). */
  HOST_ID: z.string().regex(INSTANCE_ID_PATTERN, "must be 1-64 of [A-Za-z0-9._-]").default(() => defaultHostId()),
  /** Where the front door and other hosts reach this host's instances: defaults to its first non-loopback IPv4 address. */
  HOST_ADDRESS: z.string().min(1).default(() => defaultHostAddress()),
  /** Instances this host takes: by default one per 256 MiB of its memory. */
  HOST_CAPACITY: positiveInt.default(() => Math.max(1, Math.floor(os.totalmem() / (256 * 1024 * 1024)))),
  INSTANCE_PORTS: portSet.default("20000-20999"),
  /** `k=v,...`: what an operator says about the host (zone, disk); shown in GET /v1/hosts. */
  HOST_LABELS: z
    .string()
    .regex(/^[A-Za-z0-9._/-]+=[^,=]*(,[A-Za-z0-9._/-]+=[^,=]*)*$/, "must be k=v pairs separated by commas")
    .transform((value) => Object.fromEntries(value.split(",").map((pair) => pair.split("=") as [string, string])))
    .optional(),
  /** Where Prometheus scrapes the host agent (`GET /metrics`: its instances' drains); 0: not served. */
  HOST_METRICS_PORT: metricsPort.default(9181),
});

const routerSchema = z.object({
  REDIS_URL: commonShape.REDIS_URL,
  QUEUE_PREFIX: commonShape.QUEUE_PREFIX,
  LOG_LEVEL: commonShape.LOG_LEVEL,
  ...frontDoorShape,
  /** Caddy's admin endpoint: `unix//path/to/admin.sock` (what compose and npm start use) or `http://host:port`. */
  CADDY_ADMIN: z.string().regex(/^(unix\/\/.+|https?:\/\/.+)$/, "must be unix//<absolute socket path> or an http:// URL"),
  /** Names this router in Redis (several may run, one per Caddy); defaults to the machine's hostname. */
  ROUTER_ID: z.string().regex(INSTANCE_ID_PATTERN, "must be 1-64 of [A-Za-z0-9._-]").default(() => defaultHostId()),
  /** Set: certificates come from ACME (Let's Encrypt) under this account email; unset: Caddy's internal CA. */
  TLS_EMAIL: z.string().email().optional(),
  /** How often the router reads everything again and checks that Caddy still serves it (events make changes immediate). */
  ROUTER_RESYNC_S: positiveInt.default(5),
  /** Rewritten after every sync that reached Redis and Caddy: the container's healthcheck (`dist/healthcheck.js`) reads it. */
  ROUTER_HEARTBEAT_FILE: z.string().startsWith("/", "must be an absolute path").default("/tmp/slipway-router.heartbeat"),
  /** Where Prometheus scrapes the front door (`GET /metrics`: the router's own and Caddy's per app); 0: not served. */
  ROUTER_METRICS_PORT: metricsPort.default(9180),
});

export type ApiConfig = z.infer<typeof apiSchema>;
export type RouterConfig = z.infer<typeof routerSchema>;
export type WorkerConfig = z.infer<typeof workerSchema>;
export type AgentConfig = z.infer<typeof agentSchema>;
export type HostConfig = z.infer<typeof hostSchema>;
export type StorageConfig = Omit<Pick<ApiConfig, keyof typeof storageShape>, "S3_IDLE_TIMEOUT_S"> & Partial<Pick<ApiConfig, "S3_IDLE_TIMEOUT_S">>;

function parse<T extends z.ZodTypeAny>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  // Empty strings mean "unset", as in shells and compose files.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.join(".") || "environment";
    const message = issue.code === "invalid_type" && issue.received === "undefined" ? "is required" : issue.message;
    throw new ConfigError(`invalid configuration: ${key} ${message}`);
  }
  return result.data;
}

export const loadApiConfig = (env: NodeJS.ProcessEnv = process.env): ApiConfig => requireTokenBeyondLoopback(parse(apiSchema, env));

/** An API that anything beyond this machine can reach has a token, unless its operator said API_INSECURE=1. */
function requireTokenBeyondLoopback(config: ApiConfig): ApiConfig {
  if (config.API_TOKEN || config.API_INSECURE === "1" || isLoopbackHost(config.API_HOST)) return config;
  throw new ConfigError(
    `invalid configuration: API_TOKEN is required when the API listens beyond loopback (API_HOST=${config.API_HOST}); set one (openssl rand -hex 32), or API_INSECURE=1 to run it open on a trusted network`,
  );
}
export const loadWorkerConfig = (env: NodeJS.ProcessEnv = process.env): WorkerConfig => parse(workerSchema, env);
export const loadAgentConfig = (env: NodeJS.ProcessEnv = process.env): AgentConfig => parse(agentSchema, env);
export const loadHostConfig = (env: NodeJS.ProcessEnv = process.env): HostConfig => parse(hostSchema, env);
export const loadRouterConfig = (env: NodeJS.ProcessEnv = process.env): RouterConfig => parse(routerSchema, env);

/** An app's address at the front door, as users type it. */
export function appUrl(config: Pick<ApiConfig, "SLIPWAY_DOMAIN" | "FRONT_DOOR_HTTP_PORT" | "FRONT_DOOR_HTTPS_PORT">, app: string): string {
  const https = config.FRONT_DOOR_HTTPS_PORT !== undefined;
  const port = https ? config.FRONT_DOOR_HTTPS_PORT : config.FRONT_DOOR_HTTP_PORT;
  const shown = port === (https ? 443 : 80) ? "" : `:${port}`;
  return `${https ? "https" : "http"}://${app}.${config.SLIPWAY_DOMAIN}${shown}/`;
}

function defaultHostId(): string {
  return os.hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64) || "host";
}

function defaultHostAddress(): string {
  const addresses = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
  return addresses.find((a) => a.family === "IPv4" && !a.internal)?.address ?? "127.0.0.1";
}

/** The agent's HOST_CACHE_DIR, or its default: `host-cache` in the directory holding RUNTIME_ROOT. */
export function hostCacheDir(config: Pick<AgentConfig, "RUNTIME_ROOT" | "HOST_CACHE_DIR">): string {
  return config.HOST_CACHE_DIR ?? besideRuntimeRoot(config, "host-cache");
}

/** The agent's SANDBOX_UID_DIR, or its default: `sandbox-uids` in the directory holding RUNTIME_ROOT. */
export function sandboxUidDir(config: Pick<AgentConfig, "RUNTIME_ROOT" | "SANDBOX_UID_DIR">): string {
  return config.SANDBOX_UID_DIR ?? besideRuntimeRoot(config, "sandbox-uids");
}

const besideRuntimeRoot = (config: Pick<AgentConfig, "RUNTIME_ROOT">, name: string) => path.join(path.dirname(path.resolve(config.RUNTIME_ROOT)), name);
