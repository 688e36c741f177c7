import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { CoalescedPass, PLACEMENT_CHANNEL, RELEASE_CHANNEL, ROUTES_CHANNEL, type Logger, type RouterConfig, type RouterRepository } from "@slipway/shared";
import type { CaddyAdmin } from "./caddy-admin";
import { CADDY_FEATURES, caddyConfig, refusedFeature, type AppRoute, type CaddyFeature } from "./caddy-config";
import { labelWithApps, type RouterMetrics } from "./metrics";
import { readRoutes, type RouteSources } from "./route-table";

export interface RouterDeps {
  /** A connection of its own, put in subscriber mode. */
  subscriber: Pick<Redis, "subscribe" | "on" | "disconnect">;
  admin: CaddyAdmin;
  routers: Pick<RouterRepository, "now" | "applied" | "remove">;
  sources: RouteSources;
  metrics: RouterMetrics;
  logger: Logger;
}

export interface RouterStats {
  /** Configurations Caddy was given (a change, or a Caddy that had lost it). */
  loads: number;
  /** Syncs that found Caddy already serving the table. */
  unchanged: number;
  lastSyncMs: number;
  apps: number;
  upstreams: number;
}

/**
 * Keeps one Caddy serving what Redis says: every event that may change a route (an instance's
 * state, a release, a placement, a domain) and a resync every ROUTER_RESYNC_S read every app's
 * records again and load the whole configuration when it differs from what Caddy serves. Caddy
 * swaps a loaded configuration atomically, so a change never drops a request. After each sync the
 * router records in Redis which records its Caddy serves: stopping instances wait on that.
 */
export class Router {
  private stopped = false;
  private readonly passes = new CoalescedPass(() => this.syncPass(), () => this.stopped);
  private timer: NodeJS.Timeout | undefined;
  private loadedGeneration: string | undefined;
  private preserved: Record<string, unknown> | undefined;
  /** Newer Caddies' settings this Caddy took; one it refused is dropped (see CADDY_FEATURES). */
  private readonly features = new Set<CaddyFeature>(CADDY_FEATURES);
  /** `<app> <address:port>` of every instance the loaded configuration sends requests to. */
  private served = new Set<string>();
  private appOfHost = new Map<string, string>();
  readonly stats: RouterStats = { loads: 0, unchanged: 0, lastSyncMs: 0, apps: 0, upstreams: 0 };
  /** When the last sync reached Redis and Caddy (0: none yet). */
  lastSyncedAt = 0;

  constructor(
    private readonly config: Pick<RouterConfig, "ROUTER_ID" | "CADDY_ADMIN" | "SLIPWAY_DOMAIN" | "FRONT_DOOR_HTTP_PORT" | "FRONT_DOOR_HTTPS_PORT" | "TLS_EMAIL" | "ROUTER_RESYNC_S">,
    private readonly deps: RouterDeps,
  ) {}

  /** Subscribes, then syncs; a Caddy not up yet (started beside it) is tried again at each resync. */
  async start(): Promise<void> {
    this.deps.subscriber.on("message", () => void this.sync());
    await this.deps.subscriber.subscribe(ROUTES_CHANNEL, RELEASE_CHANNEL, PLACEMENT_CHANNEL);
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.config.ROUTER_RESYNC_S * 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.deps.subscriber.disconnect();
    await this.passes.settled();
    // Instances stop waiting for this router at once rather than after ROUTER_DEAD_MS.
    await this.deps.routers.remove(this.config.ROUTER_ID).catch(() => undefined);
  }

  /** Brings Caddy up to date; concurrent calls coalesce into one more pass. Never rejects. */
  sync(): Promise<void> {
    return this.passes.run();
  }

  private async syncPass(): Promise<void> {
    try {
      await this.syncOnce();
    } catch (error) {
      this.deps.logger.warn({ err: error }, "could not bring the front door up to date; trying again");
    }
  }

  private async syncOnce(): Promise<void> {
    const started = Date.now();
    // Redis's clock before reading: what the router then records promises the records read after it.
    const snapshotAt = await this.deps.routers.now();
    const routes = await readRoutes(this.deps.sources, this.config.SLIPWAY_DOMAIN, snapshotAt);
    const generation = `slipway-${createHash("sha256").update(JSON.stringify(routes)).digest("hex").slice(0, 16)}`;
    if (generation !== this.loadedGeneration || !(await this.deps.admin.has(generation))) {
      if (generation === this.loadedGeneration) this.preserved = undefined; // Caddy restarted: read what it runs with again
      this.preserved ??= await this.preservedSettings();
      const config = () =>
        caddyConfig(routes, {
          httpPort: this.config.FRONT_DOOR_HTTP_PORT,
          httpsPort: this.config.FRONT_DOOR_HTTPS_PORT,
          tlsEmail: this.config.TLS_EMAIL,
          preserved: this.preserved!,
          generation,
          features: this.features,
        });
      for (;;) {
        try {
          await this.deps.admin.load(config());
          break;
        } catch (error) {
          const refused = refusedFeature(String((error as Error).message), this.features);
          if (!refused) throw error;
          this.features.delete(refused);
          this.deps.logger.warn(OLDER_CADDY[refused]);
        }
      }
      this.loadedGeneration = generation;
      this.stats.loads += 1;
      this.deps.metrics.loads.inc();
      this.deps.logger.info({ apps: routes.length, upstreams: countUpstreams(routes), ms: Date.now() - started }, "front door configuration loaded");
    } else {
      this.stats.unchanged += 1;
    }
    await this.deps.routers.applied(this.config.ROUTER_ID, snapshotAt);
    this.lastSyncedAt = Date.now();
    this.countChanges(routes);
    this.deps.metrics.syncSeconds.observe((Date.now() - started) / 1000);
    Object.assign(this.stats, { lastSyncMs: Date.now() - started, apps: routes.length, upstreams: countUpstreams(routes) });
  }

  /** Caddy's metrics, each app's hosts labelled with the app. */
  async caddyMetrics(): Promise<string> {
    return labelWithApps(await this.deps.admin.metrics(), this.appOfHost);
  }

  /** Instances that started or stopped taking requests since the last sync. */
  private countChanges(routes: AppRoute[]): void {
    const { metrics } = this.deps;
    const served = new Set(routes.flatMap((route) => route.upstreams.map((upstream) => `${route.app} ${upstream}`)));
    for (const upstream of served) if (!this.served.has(upstream)) metrics.upstreamChanges.inc({ change: "added" });
    for (const upstream of this.served) if (!served.has(upstream)) metrics.upstreamChanges.inc({ change: "removed" });
    this.served = served;
    this.appOfHost = new Map(routes.flatMap((route) => route.hosts.map((host) => [host, route.app] as const)));
    metrics.apps.set(routes.length);
    metrics.upstreams.set(served.size);
  }

  /**
   * What of Caddy's running configuration a load must keep: where its admin endpoint listens
   * (this router's way in), its storage (certificates) and logging. Nothing is saved to disk: the
   * configuration is always rebuilt from Redis.
   */
  private async preservedSettings(): Promise<Record<string, unknown>> {
    const running = ((await this.deps.admin.config()) ?? {}) as Record<string, unknown>;
    const admin = { ...((running.admin as Record<string, unknown> | undefined) ?? {}) };
    if (this.config.CADDY_ADMIN.startsWith("unix//")) admin.listen = this.config.CADDY_ADMIN;
    admin.config = { persist: false };
    const kept: Record<string, unknown> = { admin };
    if (running.storage) kept.storage = running.storage;
    if (running.logging) kept.logging = running.logging;
    return kept;
  }
}

const OLDER_CADDY: Record<CaddyFeature, string> = {
  stream_close_delay: "this Caddy is older than 2.7: WebSockets through the front door close whenever its configuration changes; use Caddy 2.7 or later to keep them",
  metrics: "this Caddy is older than 2.9: the front door's metrics have no per-app request counts or latencies; use Caddy 2.9 or later for them",
};

function countUpstreams(routes: AppRoute[]): number {
  return routes.reduce((sum, route) => sum + route.upstreams.length, 0);
}
