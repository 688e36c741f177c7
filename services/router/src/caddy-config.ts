/** One app as the front door routes it. */
export interface AppRoute {
  app: string;
  /** `<app>.<SLIPWAY_DOMAIN>` first, then its custom domains. */
  hosts: string[];
  /** `address:port` of each instance that takes requests; none: the app answers 503. */
  upstreams: string[];
  affinity: boolean;
}

export interface FrontDoorOptions {
  httpPort: number;
  httpsPort?: number;
  /** ACME account email; without it certificates come from Caddy's internal CA. */
  tlsEmail?: string;
  /** Kept as the running Caddy has them: `admin` (where the router reaches it), `storage`, `logging`. */
  preserved: Record<string, unknown>;
  /** Names this configuration, so a check can tell whether Caddy still serves it (`GET /id/<generation>`). */
  generation: string;
  /** What of newer Caddies' settings to use (default: all); an older Caddy refuses what it lacks. */
  features?: ReadonlySet<CaddyFeature>;
}

/**
 * Settings only newer Caddies know, each named by the JSON field an older one refuses:
 * - `stream_close_delay` (2.7): WebSockets and other upgraded streams stay open when a configuration
 *   replaces the one that opened them (every instance or release change loads a new one);
 * - `metrics` (2.9, with `per_host`): request counts, status codes and latencies per host, which the
 *   router's metrics endpoint labels with the app.
 */
export const CADDY_FEATURES = ["stream_close_delay", "metrics"] as const;
export type CaddyFeature = (typeof CADDY_FEATURES)[number];

/** The feature a Caddy's refusal names (`json: unknown field "metrics"`, quoted inside its JSON error), if any. */
export function refusedFeature(refusal: string, features: Iterable<CaddyFeature>): CaddyFeature | undefined {
  const unescaped = refusal.replaceAll('\\"', '"');
  return [...features].find((feature) => unescaped.includes(`unknown field "${feature}"`));
}

/** How long an upgraded stream outlives the configuration that opened it: a day, then clients reconnect. */
const STREAM_CLOSE_DELAY = "24h";

/** How long Caddy keeps trying other instances for a request none could take yet (a dial failure, all busy). */
const TRY_DURATION = "5s";
const AFFINITY_COOKIE = "slipway_affinity";

/**
 * The whole Caddy configuration for a route table: one server on the front door's ports, one
 * route per app matched by Host, an X-Request-Id made where the client sent none, and a reverse
 * proxy that retries a request whose connection failed on another instance. Caddy itself sets
 * X-Forwarded-For (overwriting what a client claims), X-Forwarded-Proto and X-Forwarded-Host,
 * and passes WebSocket upgrades.
 */
export function caddyConfig(routes: AppRoute[], options: FrontDoorOptions): Record<string, unknown> {
  const https = options.httpsPort !== undefined;
  const features = options.features ?? new Set(CADDY_FEATURES);
  const listen = [`:${options.httpPort}`, ...(https ? [`:${options.httpsPort}`] : [])];
  const server = {
    listen,
    routes: [...routes.map((route) => appRoute(route, features.has("stream_close_delay"))), unknownHost(options.generation)],
    // HTTPS is served when asked for; plain HTTP keeps answering too (no redirect), since the
    // front door's own health checks and local use reach it that way.
    automatic_https: https ? { disable_redirects: true } : { disable: true },
  };
  const apps: Record<string, unknown> = {
    http: {
      http_port: options.httpPort,
      ...(https ? { https_port: options.httpsPort } : {}),
      // Only hosts the routes name get a label of their own; any other Host a client sends counts as "_other".
      ...(features.has("metrics") ? { metrics: { per_host: true } } : {}),
      servers: { slipway: server },
    },
    // The internal CA must never add itself to this machine's trust store (Caddy's default does).
    pki: { certificate_authorities: { local: { install_trust: false } } },
  };
  if (https) {
    const subjects = routes.flatMap((route) => route.hosts);
    if (subjects.length > 0) {
      const issuer = options.tlsEmail ? { module: "acme", email: options.tlsEmail } : { module: "internal" };
      apps.tls = { automation: { policies: [{ subjects, issuers: [issuer] }] } };
    }
  }
  return { ...options.preserved, apps };
}

function appRoute(route: AppRoute, keepStreams: boolean): Record<string, unknown> {
  const handle =
    route.upstreams.length === 0
      ? [jsonAnswer(503, "no_instances", `no instance of ${route.app} is serving yet`)]
      : [
          {
            handler: "subroute",
            routes: [
              {
                match: [{ not: [{ header: { "X-Request-Id": ["*"] } }] }],
                handle: [{ handler: "headers", request: { set: { "X-Request-Id": ["{http.request.uuid}"] } } }],
              },
              {
                handle: [
                  {
                    handler: "reverse_proxy",
                    upstreams: route.upstreams.map((dial) => ({ dial })),
                    load_balancing: {
                      selection_policy: route.affinity ? { policy: "cookie", name: AFFINITY_COOKIE } : { policy: "round_robin" },
                      try_duration: TRY_DURATION,
                      try_interval: "100ms",
                    },
                    // An instance that refused a connection is skipped for a while: a host lost
                    // mid-request costs the requests in flight on it, not the next ones.
                    health_checks: { passive: { fail_duration: "10s", max_fails: 1 } },
                    ...(keepStreams ? { stream_close_delay: STREAM_CLOSE_DELAY } : {}),
                  },
                ],
              },
            ],
          },
        ];
  return { match: [{ host: route.hosts }], handle, terminal: true };
}

function unknownHost(generation: string): Record<string, unknown> {
  return { "@id": generation, handle: [jsonAnswer(404, "unknown_host", "no app answers at this address")] };
}

function jsonAnswer(status: number, code: string, message: string): Record<string, unknown> {
  return {
    handler: "static_response",
    status_code: status,
    headers: { "Content-Type": ["application/json"] },
    body: JSON.stringify({ error: { code, message } }),
  };
}
