import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import {
  AppLogStream,
  AppRepository,
  BuildLogStream,
  BuildRepository,
  connectRedis,
  DomainRepository,
  InstanceRepository,
  ObjectStore,
  PlacementLoop,
  PlacementRepository,
  QueueName,
  recordKeys,
  ReleaseRepository,
  type ApiConfig,
  type Logger,
} from "@slipway/shared";

/** Everything a route needs, built once in `main.ts` (or by a test) and passed down. */
export interface ApiContext {
  config: ApiConfig;
  logger: Logger;
  redis: Redis;
  store: ObjectStore;
  buildQueue: Queue;
  apps: AppRepository;
  builds: BuildRepository;
  releases: ReleaseRepository;
  instances: InstanceRepository;
  domains: DomainRepository;
  buildLogs: BuildLogStream;
  appLogs: AppLogStream;
  placements: PlacementRepository;
  /** Places apps' instances on hosts: at once on a scale change, and every second for lost and draining hosts. */
  placement: PlacementLoop;
}

/** Connects to Redis, the build queue and storage (creating the bucket if missing). */
export async function createContext(config: ApiConfig, logger: Logger): Promise<ApiContext> {
  // Requests wait out a short Redis outage, then answer 503 (see REDIS_COMMAND_TIMEOUT_S); blocking
  // reads take a connection of their own without the timeout (blockingConnection).
  const commands = { commandTimeout: config.REDIS_COMMAND_TIMEOUT_S * 1000 };
  const redis = connectRedis(config.REDIS_URL, commands);
  const store = new ObjectStore(config);
  await store.ensureBucket();
  const keys = recordKeys(config.QUEUE_PREFIX);
  const placements = new PlacementRepository(redis, keys);
  return {
    config,
    logger,
    redis,
    store,
    buildQueue: new Queue(QueueName.builds, { connection: connectRedis(config.REDIS_URL, commands), prefix: config.QUEUE_PREFIX }),
    apps: new AppRepository(redis, keys),
    builds: new BuildRepository(redis, keys),
    releases: new ReleaseRepository(redis, keys),
    instances: new InstanceRepository(redis, keys),
    domains: new DomainRepository(redis, keys),
    buildLogs: new BuildLogStream(redis, keys),
    appLogs: new AppLogStream(redis, keys),
    placements,
    placement: new PlacementLoop(placements, redis, config, logger),
  };
}

export async function closeContext(ctx: ApiContext): Promise<void> {
  await ctx.placement.stop();
  await ctx.buildQueue.close();
  // BullMQ leaves connections it was handed open.
  (await ctx.buildQueue.client).disconnect();
  ctx.redis.disconnect();
}
