import { connectRedis, ObjectStore, serveMetrics, type AgentConfig, type HostConfig, type Logger } from "@slipway/shared";
import { RuntimeAgent } from "./agent";
import { HostAgent } from "./host/host-agent";
import type { InstanceProxy } from "./proxy";

export { RuntimeAgent } from "./agent";
export { HostAgent } from "./host/host-agent";

/** Commands fail fast while Redis is down, and one that gets no answer fails too (see start). */
const agentRedis = (url: string) => connectRedis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 10_000 });

/** A host agent: runs the instances the control plane places on this host. */
export async function startHost(config: HostConfig, logger: Logger): Promise<{ host: HostAgent; close(graceMs?: number): Promise<void> }> {
  const redis = agentRedis(config.REDIS_URL);
  redis.on("error", (error) => logger.debug({ err: error }, "redis connection error"));
  const host = new HostAgent(config, redis, new ObjectStore(config), logger);
  await host.start();
  const metrics = config.HOST_METRICS_PORT > 0 ? await serveMetrics(host.metrics.registry, config.HOST_METRICS_PORT, logger) : undefined;
  return {
    host,
    close: async (graceMs) => {
      await metrics?.close();
      await host.stop(graceMs);
      redis.disconnect();
    },
  };
}

export interface RunningAgent {
  agent: RuntimeAgent;
  /** Settles when the first restore and app start are done; a rejection is a failed start. */
  ready: Promise<void>;
  /** Drains the instance for `graceMs`, stops the app (SIGKILL after `graceMs` more), disconnects. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The runtime agent's front door. It answers before the app is up (see `ready`): a stop must be
 * able to arrive while a restore is still running, without waiting for it.
 */
export async function start(config: AgentConfig, logger: Logger, proxy?: InstanceProxy): Promise<RunningAgent> {
  // Commands fail fast while Redis is down, so the agent can fall back to storage instead of
  // queueing; and one that gets no answer (a stalled server, a half-open connection) fails too,
  // instead of holding a release move, and a stop behind it, for ever.
  const redis = agentRedis(config.REDIS_URL);
  redis.on("error", (error) => logger.debug({ err: error }, "redis connection error"));
  const agent = new RuntimeAgent(config, redis, new ObjectStore(config), logger, proxy);
  await agent.listen();
  // Give Redis a moment at boot; if it is down the agent starts from storage's copy of the release.
  // The agent prepares its sandbox meanwhile, and waits for this only before its first reconcile.
  // (not events.once: it rejects on the first connection error)
  const redisSettled = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    redis.once("ready", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    agent,
    ready: agent.start(redisSettled),
    close: async (graceMs) => {
      await agent.stop(graceMs, graceMs);
      redis.disconnect();
    },
  };
}
