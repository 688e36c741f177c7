import { createLogger, loadAgentConfig, runService } from "@slipway/shared";
import { start } from "./index";

runService("runtime agent", async () => {
  const config = loadAgentConfig();
  const logger = createLogger("runtime-agent", config.LOG_LEVEL).child({ app: config.APP, instanceId: config.INSTANCE_ID });
  const running = await start(config, logger);
  return {
    ready: running.ready,
    stop: async (signal) => {
      logger.info({ signal }, "agent stopping: draining and stopping the app");
      await running.close();
    },
  };
});
