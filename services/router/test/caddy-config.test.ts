import { describe, expect, it } from "vitest";
import type { InstanceReport } from "@slipway/shared";
import { CADDY_FEATURES, caddyConfig, refusedFeature } from "../src/caddy-config";
import { routableInstances } from "../src/route-table";

const now = Date.parse("2026-12-07T12:00:00Z");
const report = (instanceId: string, overrides: Partial<InstanceReport> = {}): InstanceReport => ({
  instanceId,
  release: 2,
  buildId: "build-0002",
  state: "running",
  servingRelease: 2,
  appPath: "/srv",
  lastHeartbeatAt: new Date(now - 1000).toISOString(),
  host: "h1",
  address: "10.0.0.1",
  port: 20000 + Number(instanceId.slice(1)),
  ...overrides,
});

describe("which instances take requests", () => {
  const placed = new Map([["i1", "h1"], ["i2", "h1"], ["i3", "h1"], ["i4", "h1"]]);

  it("those serving the current release, placed where they report from, heard from lately, not draining", () => {
    const reports = [
      report("i1"),
      report("i2", { state: "draining" }),
      report("i3", { lastHeartbeatAt: new Date(now - 60_000).toISOString() }),
      report("i4", { host: "h2" }), // placed on h1: a stale report from a host it moved off
      report("i5"), // not placed at all
    ];
    expect(routableInstances(reports, placed, 2, now)).toEqual(["10.0.0.1:20001"]);
  });

  it("keeps an instance that moves to the next release routed while it serves the previous one", () => {
    const reports = [report("i1", { state: "restoring", release: 3, servingRelease: 2 }), report("i2", { state: "starting", release: 3, servingRelease: 2 }), report("i3", { servingRelease: null, state: "failed" })];
    expect(routableInstances(reports, placed, 2, now)).toEqual(["10.0.0.1:20001", "10.0.0.1:20002"]);
  });

  it("prefers the current release, and falls back to earlier ones while none serves it", () => {
    const reports = [report("i1", { servingRelease: 3 }), report("i2", { servingRelease: 2 })];
    expect(routableInstances(reports, placed, 3, now)).toEqual(["10.0.0.1:20001"]);
    expect(routableInstances([report("i2", { servingRelease: 2 })], placed, 3, now)).toEqual(["10.0.0.1:20002"]);
    expect(routableInstances([report("i1", { address: "fd00::1" })], placed, 2, now)).toEqual(["[fd00::1]:20001"]);
  });
});

describe("the Caddy configuration", () => {
  const preserved = { admin: { listen: "unix//run/caddy.sock" } };

  it("routes each app by its hosts, answers 503 for an app with no instance and 404 for an unknown host, and serves plain HTTP alone unless HTTPS is asked for", () => {
    const config = caddyConfig(
      [
        { app: "shop", hosts: ["shop.example.org", "www.shop.test"], upstreams: ["10.0.0.1:20000"], affinity: true },
        { app: "idle", hosts: ["idle.example.org"], upstreams: [], affinity: false },
      ],
      { httpPort: 80, preserved, generation: "slipway-abc" },
    ) as { admin: unknown; apps: { http: { servers: { slipway: { listen: string[]; automatic_https: unknown; routes: Record<string, unknown>[] } } }; tls?: unknown; pki: unknown } };
    expect(config.admin).toEqual(preserved.admin);
    const server = config.apps.http.servers.slipway;
    expect(server.listen).toEqual([":80"]);
    expect(server.automatic_https).toEqual({ disable: true });
    expect(config.apps.tls).toBeUndefined();
    expect(config.apps.pki).toEqual({ certificate_authorities: { local: { install_trust: false } } });
    const [shop, idle, unknown] = server.routes as [Record<string, any>, Record<string, any>, Record<string, any>];
    expect(shop.match).toEqual([{ host: ["shop.example.org", "www.shop.test"] }]);
    const proxy = shop.handle[0].routes[1].handle[0];
    expect(proxy).toMatchObject({ handler: "reverse_proxy", upstreams: [{ dial: "10.0.0.1:20000" }], load_balancing: { selection_policy: { policy: "cookie" }, try_duration: "5s" } });
    expect(idle.handle[0]).toMatchObject({ handler: "static_response", status_code: 503 });
    expect(unknown).toMatchObject({ "@id": "slipway-abc", handle: [{ status_code: 404 }] });
  });

  it("with HTTPS: both ports, certificates for every app's hosts from ACME with an email, else the internal CA", () => {
    const routes = [{ app: "shop", hosts: ["shop.example.org"], upstreams: ["10.0.0.1:20000"], affinity: false }];
    const internal = caddyConfig(routes, { httpPort: 80, httpsPort: 443, preserved, generation: "g" }) as any;
    expect(internal.apps.http.servers.slipway.listen).toEqual([":80", ":443"]);
    expect(internal.apps.tls.automation.policies).toEqual([{ subjects: ["shop.example.org"], issuers: [{ module: "internal" }] }]);
    const acme = caddyConfig(routes, { httpPort: 80, httpsPort: 443, tlsEmail: "ops@example.org", preserved, generation: "g" }) as any;
    expect(acme.apps.tls.automation.policies[0].issuers).toEqual([{ module: "acme", email: "ops@example.org" }]);
  });

  it("asks newer Caddies for per-host metrics and streams that outlive a reload, and leaves out what an older one refused", () => {
    const routes = [{ app: "shop", hosts: ["shop.example.org"], upstreams: ["10.0.0.1:20000"], affinity: false }];
    const proxyOf = (config: any) => config.apps.http.servers.slipway.routes[0].handle[0].routes[1].handle[0];
    const current = caddyConfig(routes, { httpPort: 80, preserved, generation: "g" }) as any;
    expect(current.apps.http.metrics).toEqual({ per_host: true });
    expect(proxyOf(current).stream_close_delay).toBe("24h");
    const older = caddyConfig(routes, { httpPort: 80, preserved, generation: "g", features: new Set(["stream_close_delay"] as const) }) as any;
    expect(older.apps.http.metrics).toBeUndefined();
    expect(proxyOf(older).stream_close_delay).toBe("24h");
    const oldest = caddyConfig(routes, { httpPort: 80, preserved, generation: "g", features: new Set() }) as any;
    expect(proxyOf(oldest).stream_close_delay).toBeUndefined();
  });

  it("tells which newer setting an older Caddy refused, from the error it answers a load with", () => {
    // Caddy 2.6.2's answer to a configuration with the http app's `metrics`, as its admin API sends it.
    const metrics = `Caddy refused the configuration (400): {"error":"loading config: loading new config: loading http app module: decoding module config: http: json: unknown field \\"metrics\\""}`;
    expect(refusedFeature(metrics, CADDY_FEATURES)).toBe("metrics");
    const streams = `Caddy refused the configuration (400): {"error":"loading handler modules: position 0: loading module 'reverse_proxy': decoding module config: http.handlers.reverse_proxy: json: unknown field \\"stream_close_delay\\""}`;
    expect(refusedFeature(streams, ["stream_close_delay"])).toBe("stream_close_delay");
    expect(refusedFeature(streams, ["metrics"])).toBeUndefined();
    expect(refusedFeature(`Caddy refused the configuration (400): {"error":"listen tcp :80: bind: permission denied"}`, CADDY_FEATURES)).toBeUndefined();
  });
});
