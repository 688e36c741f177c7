import { createLogger, loadWorkerConfig, runService } from "@slipway/shared";
import { start } from "./index";

runService("build worker", async () => {
  const config = loadWorkerConfig();
  const logger = createLogger("build-worker", config.LOG_LEVEL);
  const running = await start(config, logger);
  logger.info({ concurrency: config.WORKER_CONCURRENCY }, "build worker ready");
  return {
    stop: async (signal) => {
      logger.info({ signal, graceS: config.SHUTDOWN_GRACE_S }, "build worker stopping: no new builds; running ones may finish");
      await running.close();
      logger.info("build worker stopped");
    },
  };
});
