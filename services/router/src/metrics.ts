import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "@slipway/shared";

/** What the router counts of its own work; Caddy counts the requests. */
export class RouterMetrics {
  readonly registry = new Registry();
  readonly loads = new Counter({ name: "slipway_front_door_config_loads_total", help: "Configurations loaded into Caddy (a change, or a Caddy that had lost its configuration)", registers: [this.registry] });
  readonly upstreamChanges = new Counter({
    name: "slipway_front_door_upstream_changes_total",
    help: "Instances that started or stopped taking an app's requests at this front door",
    labelNames: ["change"] as const,
    registers: [this.registry],
  });
  readonly apps = new Gauge({ name: "slipway_front_door_apps", help: "Apps the front door routes", registers: [this.registry] });
  readonly upstreams = new Gauge({ name: "slipway_front_door_upstreams", help: "Instances taking requests, over all apps", registers: [this.registry] });
  readonly syncSeconds = new Histogram({
    name: "slipway_front_door_sync_seconds",
    help: "A sync: reading every route from Redis and, when it changed, loading Caddy",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "slipway_router_" });
  }
}

/**
 * Caddy's metrics with `app="<app>"` added to each HTTP sample whose `host` label is one of an
 * app's hosts (its `<app>.<SLIPWAY_DOMAIN>` or a custom domain): requests, status codes and
 * latencies per app. Hosts no route names are Caddy's `_other`, left without an app.
 */
export function labelWithApps(caddyMetrics: string, appOfHost: ReadonlyMap<string, string>): string {
  return caddyMetrics
    .split("\n")
    .map((line) => {
      if (!line.startsWith("caddy_http_")) return line;
      const host = /[{,]host="([^"\\]*)"/.exec(line);
      // Over HTTPS Caddy labels the Host header as sent, a port included when the client gave one.
      const app = host && appOfHost.get(host[1]!.replace(/:\d+$/, ""));
      if (!host || !app) return line;
      const end = host.index + host[0].length;
      return `${line.slice(0, end)},app="${app}"${line.slice(end)}`;
    })
    .join("\n");
}

/** Caddy's metrics as one more block after the router's own; a Caddy that cannot be asked says so in a gauge rather than failing the scrape. */
export async function withCaddyMetrics(own: string, caddy: () => Promise<string>, logger: Logger): Promise<string> {
  const up = (value: 0 | 1) => `# HELP slipway_front_door_caddy_up Whether Caddy's metrics could be read\n# TYPE slipway_front_door_caddy_up gauge\nslipway_front_door_caddy_up ${value}\n`;
  const caddyText = await caddy().then(
    (text) => up(1) + text,
    (error: unknown) => {
      logger.warn({ err: error }, "could not read Caddy's metrics");
      return up(0);
    },
  );
  return `${own}\n${caddyText}`;
}
