import type { Redis } from "ioredis";
import type { AppRepository, BuildLogStream, BuildRepository, Logger, ObjectStore, ReleaseRepository, WorkerConfig } from "@slipway/shared";

import type { ActiveBuilds } from "./active-builds";

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
  activeBuilds: ActiveBuilds;
  /** The resolv.conf every build sandbox gets: its user-mode network's DNS. */
  sandboxResolvConf: string;
}
