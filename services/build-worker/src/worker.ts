import { Queue, Worker } from "bullmq";
import type { Redis } from "ioredis";
import {
  AppRepository,
  BuildLogStream,
  BuildRepository,
  CacheDigestRepository,
  CANCEL_CHANNEL,
  ConfigError,
  GC_SCHEDULE,
  hasZstd,
  JobName,
  ZSTD_MISSING,
  connectRedis,
  ObjectStore,
  QueueName,
  recordKeys,
  ReleaseRepository,
  subscribe,
  type Logger,
  type WorkerConfig,
} from "@slipway/shared";
import { checkSandboxSupport, reapSandboxLeftovers, writeSandboxResolvConf } from "@slipway/shared/sandbox";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import { ActiveBuilds } from "./active-builds";
import { ToolCache } from "./tools";
import { checkProcessors, createProcessors, dispatch } from "./processors";
import type { WorkerContext } from "./context";
import { BuildAborted } from "./errors";
import { heartbeatFile, pingsWithin, startHeartbeat } from "@slipway/shared/light";

export interface RunningWorker {
  worker: Worker;
  ctx: WorkerContext;
  /**
   * Stops taking jobs and lets running builds finish for up to `graceMs`; builds still running
   * then are stopped and handed back to the queue for another worker. Closes connections.
   */
  close(graceMs?: number): Promise<void>;
}

/** Connects and starts consuming the builds queue with `WORKER_CONCURRENCY` builds at a time. */
export async function startBuildWorker(config: WorkerConfig, logger: Logger): Promise<RunningWorker> {
  if (config.ARTIFACT_COMPRESSION === "zstd" && !hasZstd()) throw new ConfigError(`${ZSTD_MISSING}; or set ARTIFACT_COMPRESSION=gzip`);
  const sandboxResolvConf = await prepareSandboxes(config, logger);
  const redis = connectRedis(config.REDIS_URL);
  const store = new ObjectStore(config);
  await store.ensureBucket();
  const keys = recordKeys(config.QUEUE_PREFIX);
  const ctx: WorkerContext = {
    config,
    logger,
    redis,
    store,
    apps: new AppRepository(redis, keys),
    builds: new BuildRepository(redis, keys),
    releases: new ReleaseRepository(redis, keys),
    buildLogs: new BuildLogStream(redis, keys),
    cacheDigests: new CacheDigestRepository(redis, keys),
    activeBuilds: new ActiveBuilds(),
    sandboxResolvConf,
    tools: new ToolCache(config, sandboxResolvConf),
  };
  const processors = createProcessors(ctx);
  try {
    checkProcessors(processors);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const cancels = listenForCancels(redis, ctx.activeBuilds, logger);
  const workerConnection = connectRedis(config.REDIS_URL);
  const worker = new Worker(QueueName.builds, dispatch(processors), {
    connection: workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_S * 1000,
    stalledInterval: config.WORKER_LOCK_S * 1000,
    maxStalledCount: 2,
  });
  worker.on("error", (error) => logger.error({ err: error }, "worker error"));
  await worker.waitUntilReady();

  // Garbage collection on a schedule that every worker agrees on (see GC_SCHEDULE).
  const maintenanceConnection = connectRedis(config.REDIS_URL);
  const maintenance = new Worker(QueueName.maintenance, dispatch(processors), { connection: maintenanceConnection, prefix: config.QUEUE_PREFIX, concurrency: 1 });
  maintenance.on("error", (error) => logger.error({ err: error }, "maintenance worker error"));
  const maintenanceQueue = new Queue(QueueName.maintenance, { connection: maintenanceConnection, prefix: config.QUEUE_PREFIX });
  if (config.GC_INTERVAL_S > 0) {
    await maintenanceQueue.upsertJobScheduler(GC_SCHEDULE.id, { every: config.GC_INTERVAL_S * 1000 }, { name: JobName.gc, data: {}, opts: GC_SCHEDULE.jobOptions });
  }
  const heartbeatMs = config.HEARTBEAT_S * 1000;
  // The records connection, not BullMQ's: that one sits in blocking reads, where a PING would wait its turn.
  const heartbeat = startHeartbeat(heartbeatFile(config.SCRATCH_DIR), heartbeatMs, async () => worker.isRunning() && (await pingsWithin(redis, heartbeatMs)));
  return {
    worker,
    ctx,
    close: async (graceMs = config.SHUTDOWN_GRACE_S * 1000) => {
      await heartbeat.stop();
      const closing = Promise.all([worker.close(), maintenance.close()]);
      const grace = setTimeout(() => {
        if (ctx.activeBuilds.size === 0) return;
        logger.warn({ builds: ctx.activeBuilds.size }, "grace period over: handing running builds back to the queue");
        ctx.activeBuilds.abortAll(() => new BuildAborted("shutdown", "the build worker shut down; another worker will build it"));
      }, graceMs);
      // BullMQ's close waits on Redis, for ever while Redis is down: once the grace period and the
      // builds' hand-back are over, the worker stops without it (its jobs' locks lapse, and
      // another worker takes them as stalled).
      let unanswered: NodeJS.Timeout | undefined;
      const outOfTime = new Promise<"out of time">((resolve) => (unanswered = setTimeout(() => resolve("out of time"), graceMs + REDIS_CLOSE_WAIT_MS)));
      if ((await Promise.race([closing, outOfTime])) === "out of time") {
        // With Redis there, the close is only slow (a build still handing itself back): wait for it.
        if (redis.status === "ready") await closing;
        else logger.warn("Redis did not answer the worker's close: stopping without it");
      }
      clearTimeout(unanswered);
      clearTimeout(grace);
      await Promise.race([maintenanceQueue.close(), new Promise((resolve) => setTimeout(resolve, REDIS_CLOSE_WAIT_MS).unref())]);
      maintenanceConnection.disconnect();
      cancels.disconnect();
      // BullMQ leaves connections it was handed open.
      workerConnection.disconnect();
      redis.disconnect();
    },
  };
}

function listenForCancels(redis: Redis, activeBuilds: ActiveBuilds, logger: Logger): Redis {
  const subscriber = redis.duplicate();
  void subscribe(subscriber, CANCEL_CHANNEL, ({ buildId }) => {
    if (activeBuilds.abort(buildId, new BuildAborted("canceled", "the build was canceled"))) logger.info({ buildId }, "build canceled");
  });
  return subscriber;
}

/** How long, past the grace period, a stopping worker waits for Redis to take its close. */
const REDIS_CLOSE_WAIT_MS = 5000;

/** Refuses to start when builds cannot be sandboxed, unless the operator said SANDBOX=off. */
async function prepareSandboxes(config: WorkerConfig, logger: Logger): Promise<string> {
  await mkdir(config.SCRATCH_DIR, { recursive: true, mode: 0o711 });
  if (config.SANDBOX === "off") {
    logger.warn("SANDBOX=off: builds run untrusted code as this worker's own user, beside its credentials. Never do this in production.");
  } else {
    const { cgroups } = await checkSandboxSupport({ network: true });
    if (!cgroups) logger.warn("cgroups are not writable here: builds get prlimit's process and file-size limits but no memory limit");
    const reaped = await reapSandboxLeftovers();
    if (reaped.networks || reaped.cgroups) logger.info(reaped, "removed what sandboxes of a worker killed outright left (slirp4netns processes, cgroups)");
  }
  // Beside the scratch dir, not in it: it is the worker's, shared by every build of this host.
  return writeSandboxResolvConf(os.tmpdir());
}
