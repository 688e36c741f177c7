import { AppRepository, DomainRepository, InstanceRepository, PlacementRepository, recordKeys, ReleaseRepository, RouterRepository, serveMetrics, type Logger, type MetricsServer, type RouterConfig } from "@slipway/shared";
import { connectRedis, startHeartbeat } from "@slipway/shared";
import { CaddyAdmin } from "./caddy-admin";
import { RouterMetrics, withCaddyMetrics } from "./metrics";
import { Router } from "./router";

export { CaddyAdmin } from "./caddy-admin";
export { caddyConfig, type AppRoute } from "./caddy-config";
export { labelWithApps } from "./metrics";
export { routableInstances } from "./route-table";
export { Router } from "./router";

/** Starts a router for the Caddy at CADDY_ADMIN: it serves what Redis says until closed. */
export async function startRouter(config: RouterConfig, logger: Logger): Promise<{ router: Router; close(): Promise<void> }> {
  // A sync waiting on a Redis that stopped answering fails and is tried again, instead of hanging.
  const redis = connectRedis(config.REDIS_URL, { commandTimeout: 5000 });
  const subscriber = redis.duplicate();
  const keys = recordKeys(config.QUEUE_PREFIX);
  const metrics = new RouterMetrics();
  const router = new Router(config, {
    subscriber,
    admin: new CaddyAdmin(config.CADDY_ADMIN),
    routers: new RouterRepository(redis, keys),
    sources: {
      apps: new AppRepository(redis, keys),
      releases: new ReleaseRepository(redis, keys),
      instances: new InstanceRepository(redis, keys),
      placements: new PlacementRepository(redis, keys),
      domains: new DomainRepository(redis, keys),
    },
    metrics,
    logger,
  });
  let metricsServer: MetricsServer | undefined;
  try {
    await router.start();
    const scrape = { contentType: metrics.registry.contentType, metrics: async () => withCaddyMetrics(await metrics.registry.metrics(), () => router.caddyMetrics(), logger) };
    if (config.ROUTER_METRICS_PORT > 0) metricsServer = await serveMetrics(scrape, config.ROUTER_METRICS_PORT, logger);
  } catch (error) {
    await router.stop();
    redis.disconnect();
    throw error;
  }
  // Healthy while syncs reach Redis and Caddy: the resync alone makes one every ROUTER_RESYNC_S.
  const resyncMs = config.ROUTER_RESYNC_S * 1000;
  const heartbeat = startHeartbeat(config.ROUTER_HEARTBEAT_FILE, resyncMs, async () => Date.now() - router.lastSyncedAt < 2 * resyncMs);
  logger.info({ router: config.ROUTER_ID, domain: config.SLIPWAY_DOMAIN, http: config.FRONT_DOOR_HTTP_PORT, https: config.FRONT_DOOR_HTTPS_PORT, metrics: config.ROUTER_METRICS_PORT || undefined }, `router ${config.ROUTER_ID} serving *.${config.SLIPWAY_DOMAIN}`);
  return {
    router,
    close: async () => {
      await heartbeat.stop();
      await metricsServer?.close();
      await router.stop();
      redis.disconnect();
    },
  };
}
