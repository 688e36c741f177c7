import { createLogger, loadAgentConfig, runService } from "@slipway/shared/boot";
import { InstanceProxy } from "./proxy";

runService("runtime agent", async () => {
  const config = loadAgentConfig();
  const logger = createLogger("runtime-agent", config.LOG_LEVEL).child({ app: config.APP, instanceId: config.INSTANCE_ID });
  // The port answers (503 until a release serves) before the rest of the agent (Redis, storage,
  // archives) is loaded at all: that is what a load balancer's or an orchestrator's probe waits on.
  const proxy = new InstanceProxy();
  await proxy.listen(config.PORT);
  const { start } = await import("./index");
  const running = await start(config, logger, proxy);
  return {
    ready: running.ready,
    stop: async (signal) => {
      logger.info({ signal }, "agent stopping: draining and stopping the app");
      await running.close();
    },
  };
});
