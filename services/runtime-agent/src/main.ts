import { accessSync, constants } from "node:fs";
import { fileURLToPath } from "node:url";
import { InstanceProxy } from "./proxy";

// One instance (APP set, the agent of a single instance an operator placed by hand), or, without
// APP, a host agent running whatever the control plane places on this host.
const singleInstance = Boolean(process.env.APP);

// A single instance's port answers (503 until a release serves) before anything else is loaded,
// the configuration's validation and the logger included, let alone Redis, storage and archives:
// that is what a load balancer's or an orchestrator's probe waits on. A PORT that is not a plain
// port number is left to the configuration to refuse, in its one line.
const proxy = new InstanceProxy();
const earlyPort = singleInstance && /^\d{1,5}$/.test(process.env.PORT ?? "") ? Number(process.env.PORT) : undefined;
const listening = earlyPort !== undefined && earlyPort <= 65535 ? proxy.listen(earlyPort).catch(() => undefined) : undefined;

const { createLogger, loadAgentConfig, loadHostConfig, runService } = await import("@slipway/shared/boot");

if (singleInstance) {
  runService("runtime agent", async () => {
    const config = loadAgentConfig();
    config.FETCH_HELPER ??= helperBesideAgent();
    const logger = createLogger("runtime-agent", config.LOG_LEVEL).child({ app: config.APP, instanceId: config.INSTANCE_ID });
    // Again when the early attempt failed (a port in use): this time its error fails the start.
    if ((await listening) === undefined) await proxy.listen(config.PORT);
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
} else {
  runService("host agent", async () => {
    const config = loadHostConfig();
    config.FETCH_HELPER ??= helperBesideAgent();
    const logger = createLogger("runtime-agent", config.LOG_LEVEL).child({ host: config.HOST_ID });
    const { startHost } = await import("./index");
    const running = await startHost(config, logger);
    return {
      ready: Promise.resolve(),
      stop: async (signal) => {
        logger.info({ signal }, "host agent stopping: draining and stopping its instances");
        await running.close();
      },
    };
  });
}

/** slipway-fetch as `npm run build` or the image leaves it beside the compiled agent, when it is there. */
function helperBesideAgent(): string | undefined {
  const helper = fileURLToPath(new URL("./slipway-fetch", import.meta.url));
  try {
    accessSync(helper, constants.X_OK);
    return helper;
  } catch {
    return undefined;
  }
}
