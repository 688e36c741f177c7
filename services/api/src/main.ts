import type { Server } from "node:http";
import { createLogger, loadApiConfig, runService } from "@slipway/shared";
import { createApi } from "./app";
import { closeContext, createContext } from "./context";
import { createMetrics } from "./metrics";

runService("api", async () => {
  const config = loadApiConfig();
  const logger = createLogger("api", config.LOG_LEVEL);
  const ctx = await createContext(config, logger);
  const metrics = createMetrics(ctx);
  const server: Server = createApi(ctx, metrics).listen(config.API_PORT, config.API_HOST, () => {
    logger.info({ port: config.API_PORT, host: config.API_HOST }, `api listening on http://${config.API_HOST}:${config.API_PORT}`);
  });
  return {
    stop: async (signal) => {
      logger.info({ signal }, "api stopping");
      // Live-log followers hold connections open: give in-flight requests a grace period, no more.
      setTimeout(() => server.closeAllConnections(), 10_000).unref();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await metrics.close();
      await closeContext(ctx);
    },
  };
});
