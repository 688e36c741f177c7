import path from "node:path";
import { rm } from "node:fs/promises";
import { createLogger } from "@slipway/shared";
import { startRedisServer, startS3Server, type EmbeddedS3 } from "@slipway/shared/embedded";
import type { ApiContext } from "@slipway/api";
import { startServices } from "../test/harness/services";

export interface BenchStack {
  /** What a service process on this stack needs in its environment. */
  env: Record<string, string>;
  base: string;
  api: ApiContext;
  s3: EmbeddedS3;
  close(): Promise<void>;
}

/**
 * A real redis-server and S3 server, the API in this process and (unless `worker: false`) one
 * build worker, with data under `work`; `close` stops everything and removes `work`.
 */
export async function startBenchStack(work: string, extraEnv: Record<string, string> = {}, options: { worker?: boolean } = {}): Promise<BenchStack> {
  const [redis, s3] = await Promise.all([startRedisServer(), startS3Server({ dir: path.join(work, "s3") })]);
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
    S3_ENDPOINT: s3.url,
    S3_ACCESS_KEY: s3.accessKey,
    S3_SECRET_KEY: s3.secretKey,
    SCRATCH_DIR: path.join(work, "scratch"),
    LOG_LEVEL: "warn",
    GC_INTERVAL_S: "0",
    ...extraEnv,
  };
  const services = await startServices(env, createLogger("bench", "warn"), options);
  return {
    env,
    base: services.baseUrl,
    api: services.api,
    s3,
    close: async () => {
      await services.close();
      await Promise.all([redis.stop(), s3.stop()]);
      await rm(work, { recursive: true, force: true });
    },
  };
}
