import type { Server } from "node:http";
import { ConfigError, createLogger, loadApiConfig } from "@slipway/shared";
import { createApi } from "./app";
import { closeContext, createContext } from "./context";
import { createMetrics } from "./metrics";

async function main() {
  const config = loadApiConfig();
  const logger = createLogger("api", config.LOG_LEVEL);
  const ctx = await createContext(config, logger);
  const metrics = createMetrics(ctx);
  const server: Server = createApi(ctx, metrics).listen(config.API_PORT, config.API_HOST, () => {
    logger.info({ port: config.API_PORT, host: config.API_HOST }, `api listening on http://${config.API_HOST}:${config.API_PORT}`);
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "api stopping");
    // Live-log followers hold connections open: give in-flight requests a grace period, no more.
    setTimeout(() => server.closeAllConnections(), 10_000).unref();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await metrics.close();
    await closeContext(ctx);
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `api failed to start: ${(error as Error).message}`);
  process.exit(1);
});
