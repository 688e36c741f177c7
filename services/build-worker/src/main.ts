import { ConfigError, createLogger, loadWorkerConfig } from "@slipway/shared";
import { startBuildWorker } from "./worker";

async function main() {
  const config = loadWorkerConfig();
  const logger = createLogger("build-worker", config.LOG_LEVEL);
  const running = await startBuildWorker(config, logger);
  logger.info({ concurrency: config.WORKER_CONCURRENCY }, "build worker ready");

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceS: config.SHUTDOWN_GRACE_S }, "build worker stopping: no new builds; running ones may finish");
    await running.close();
    logger.info("build worker stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `build worker failed to start: ${(error as Error).message}`);
  process.exit(1);
});
