import { ConfigError, connectRedis, createLogger, loadAgentConfig, ObjectStore } from "@slipway/shared";
import { RuntimeAgent } from "./agent";

async function main() {
  const config = loadAgentConfig();
  const logger = createLogger("runtime-agent", config.LOG_LEVEL).child({ app: config.APP, instanceId: config.INSTANCE_ID });
  // Commands fail fast while Redis is down, so the agent can fall back to storage instead of queueing.
  const redis = connectRedis(config.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  redis.on("error", (error) => logger.debug({ err: error }, "redis connection error"));
  // Give Redis a moment at boot; if it is down the agent starts from storage's copy of the release.
  // (not events.once: it rejects on the first connection error)
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const store = new ObjectStore(config);
  const agent = new RuntimeAgent(config, redis, store, logger);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "agent stopping: draining and stopping the app");
    await agent.stop();
    redis.disconnect();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  await agent.start();
}

main().catch((error) => {
  console.error(error instanceof ConfigError ? error.message : `runtime agent failed to start: ${(error as Error).message}`);
  process.exit(1);
});
