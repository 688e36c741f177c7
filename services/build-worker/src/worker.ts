import { Worker } from "bullmq";
import {
  AppRepository,
  BuildLogStream,
  BuildRepository,
  connectRedis,
  ObjectStore,
  QueueName,
  ReleaseRepository,
  type Logger,
  type WorkerConfig,
} from "@slipway/shared";
import { createBuildProcessor } from "./build.processor";
import type { WorkerContext } from "./context";

export interface RunningWorker {
  worker: Worker;
  ctx: WorkerContext;
  /** Stops taking jobs, waits for running builds, closes connections. */
  close(): Promise<void>;
}

/** Connects and starts consuming the builds queue with `WORKER_CONCURRENCY` builds at a time. */
export async function startBuildWorker(config: WorkerConfig, logger: Logger): Promise<RunningWorker> {
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
  };
  const worker = new Worker(QueueName.builds, createBuildProcessor(ctx), {
    connection: connectRedis(config.REDIS_URL),
    prefix: config.QUEUE_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
  });
  worker.on("error", (error) => logger.error({ err: error }, "worker error"));
  await worker.waitUntilReady();
  return {
    worker,
    ctx,
    close: async () => {
      await worker.close();
      redis.disconnect();
    },
  };
}
