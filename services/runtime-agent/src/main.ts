import { connectRedis, createLogger, loadAgentConfig, ObjectStore, runService } from "@slipway/shared";
import { RuntimeAgent } from "./agent";

runService("runtime agent", async () => {
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
  const agent = new RuntimeAgent(config, redis, new ObjectStore(config), logger);
  return {
    // The agent takes a stop while it is still starting (a restore in progress): it must not wait.
    ready: agent.start(),
    stop: async (signal) => {
      logger.info({ signal }, "agent stopping: draining and stopping the app");
      await agent.stop();
      redis.disconnect();
    },
  };
});
