import { createLogger, loadRouterConfig, runService } from "@slipway/shared/boot";

runService("router", async () => {
  const config = loadRouterConfig();
  const logger = createLogger("router", config.LOG_LEVEL).child({ router: config.ROUTER_ID });
  const { startRouter } = await import("./index");
  const running = await startRouter(config, logger);
  return {
    stop: async (signal) => {
      logger.info({ signal }, "router stopping");
      await running.close();
    },
  };
});
