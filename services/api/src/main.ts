import { createLogger, loadApiConfig, runService } from "@slipway/shared";
import { start } from "./index";

runService("api", async () => {
  const config = loadApiConfig();
  const logger = createLogger("api", config.LOG_LEVEL);
  const api = await start(config, logger);
  logger.info({ port: config.API_PORT, host: config.API_HOST }, `api listening on ${api.url}`);
  return {
    stop: async (signal) => {
      logger.info({ signal }, "api stopping");
      await api.close();
    },
  };
});
