import type { Redis } from "ioredis";
import type { AppRepository, BuildLogStream, BuildRepository, CacheDigestRepository, Logger, ObjectStore, ReleaseRepository, WorkerConfig } from "@slipway/shared";

import type { ActiveBuilds } from "./active-builds";
import type { ToolCache } from "./tools";

/** What the build processor works with; built once per worker process. */
export interface WorkerContext {
  config: WorkerConfig;
  logger: Logger;
  redis: Redis;
  store: ObjectStore;
  apps: AppRepository;
  builds: BuildRepository;
  releases: ReleaseRepository;
  buildLogs: BuildLogStream;
  cacheDigests: CacheDigestRepository;
  activeBuilds: ActiveBuilds;
  /** The resolv.conf every build sandbox gets: its user-mode network's DNS. */
  sandboxResolvConf: string;
  tools: ToolCache;
}
