import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import {
  AppRepository,
  BuildLogStream,
  BuildRepository,
  CANCEL_CHANNEL,
  cancelEventSchema,
  ConfigError,
  hasZstd,
  ZSTD_MISSING,
  connectRedis,
  ObjectStore,
  QueueName,
  ReleaseRepository,
  type Logger,
  type WorkerConfig,
} from "@slipway/shared";
import { ActiveBuilds } from "./active-builds";
import { createBuildProcessor } from "./build.processor";
import type { WorkerContext } from "./context";
import { BuildAborted } from "./errors";

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
  const redis = connectRedis(config.REDIS_URL);
  const store = new ObjectStore(config);
  await store.ensureBucket();
  const ctx: WorkerContext = {
    config,
    logger,
    redis,
    store,
    apps: new AppRepository(redis),
    builds: new BuildRepository(redis),
    releases: new ReleaseRepository(redis),
    buildLogs: new BuildLogStream(redis),
    activeBuilds: new ActiveBuilds(),
  };
  const cancels = listenForCancels(redis, ctx.activeBuilds, logger);
  const workerConnection = connectRedis(config.REDIS_URL);
  const worker = new Worker(QueueName.builds, createBuildProcessor(ctx), {
    connection: workerConnection,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_S * 1000,
    stalledInterval: config.WORKER_LOCK_S * 1000,
    maxStalledCount: 2,
  });
  worker.on("error", (error) => logger.error({ err: error }, "worker error"));
  await worker.waitUntilReady();
  return {
    worker,
    ctx,
    close: async (graceMs = config.SHUTDOWN_GRACE_S * 1000) => {
      const closing = worker.close();
      const grace = setTimeout(() => {
        if (ctx.activeBuilds.size === 0) return;
        logger.warn({ builds: ctx.activeBuilds.size }, "grace period over: handing running builds back to the queue");
        ctx.activeBuilds.abortAll(() => new BuildAborted("shutdown", "the build worker shut down; another worker will build it"));
      }, graceMs);
      await closing;
      clearTimeout(grace);
      cancels.disconnect();
      // BullMQ leaves connections it was handed open.
      workerConnection.disconnect();
      redis.disconnect();
    },
  };
}

function listenForCancels(redis: Redis, activeBuilds: ActiveBuilds, logger: Logger): Redis {
  const subscriber = redis.duplicate();
  subscriber.on("message", (_channel, message) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    const event = cancelEventSchema.safeParse(parsed);
    if (event.success && activeBuilds.abort(event.data.buildId, new BuildAborted("canceled", "the build was canceled"))) {
      logger.info({ buildId: event.data.buildId }, "build canceled");
    }
  });
  void subscriber.subscribe(CANCEL_CHANNEL);
  return subscriber;
}
