import { checkAppName as app, checkBuildId as build, checkHostId as host, checkVersion as version } from "./ids";

/** The prefix of every record key unless a service is configured otherwise: the stored layout. */
export const DEFAULT_RECORD_PREFIX = "slipway";

/**
 * Every Redis key Slipway writes, in one place; each refuses an id that could name another key.
 * The prefix is the services' QUEUE_PREFIX, so two stacks with different prefixes share one Redis
 * without seeing each other's records.
 */
export function recordKeys(prefix: string = DEFAULT_RECORD_PREFIX) {
  return {
    apps: `${prefix}:apps`,
    buildSeq: `${prefix}:build-seq`,
    queuedRebuild: (name: string, sourceSha256: string, noCache: boolean) => `${prefix}:app:${app(name)}:queued-rebuild:${sourceSha256}:${noCache ? "fresh" : "cached"}`,
    app: (name: string) => `${prefix}:app:${app(name)}`,
    appBuilds: (name: string) => `${prefix}:app:${app(name)}:builds`,
    releases: (name: string) => `${prefix}:app:${app(name)}:releases`,
    releaseSeq: (name: string) => `${prefix}:app:${app(name)}:release-seq`,
    currentRelease: (name: string) => `${prefix}:app:${app(name)}:current-release`,
    rollout: (name: string, v: number) => `${prefix}:app:${app(name)}:rollout:${version(v)}`,
    rolloutHolders: (name: string, v: number) => `${prefix}:app:${app(name)}:rollout:${version(v)}:holders`,
    /** Held by the one instance running a release's release command (see ReleasePhaseRepository). */
    releasePhaseClaim: (name: string, v: number) => `${prefix}:app:${app(name)}:release-phase:${version(v)}`,
    instances: (name: string) => `${prefix}:app:${app(name)}:instances`,
    build: (id: string) => `${prefix}:build:${build(id)}`,
    buildLog: (id: string) => `${prefix}:build:${build(id)}:log`,
    /** Dependency-cache object key → the sha256 its worker packed (see CacheDigestRepository). */
    cacheDigests: (name: string) => `${prefix}:app:${app(name)}:cache-digests`,
    /** The app's own output and its agents' lifecycle lines, a capped stream (see AppLogStream). */
    appLogs: (name: string) => `${prefix}:app:${app(name)}:logs`,
    /** Where the app's instances are placed (instance id → host, epoch; see PlacementRepository). */
    placements: (name: string) => `${prefix}:app:${app(name)}:placements`,
    /** The app's desired instance count and how many are placed. */
    scale: (name: string) => `${prefix}:app:${app(name)}:scale`,
    hosts: `${prefix}:hosts`,
    hostBeats: `${prefix}:host-beats`,
    hostsDraining: `${prefix}:hosts-draining`,
    /** Every placement's instance id comes from here: unique for ever, so it doubles as the fencing epoch. */
    placementSeq: `${prefix}:placement-seq`,
    /** Apps whose placement is not what they asked for yet: the placement loop looks at these. */
    appsUnsettled: `${prefix}:apps-unsettled`,
    /** The placements on one host (`<app>/<instance id>` → epoch); the prefix alone is what placement scripts extend. */
    hostPlacements: (id: string) => `${prefix}:host:${host(id)}:placements`,
    hostPlacementsPrefix: `${prefix}:host:`,
    /** Every custom domain → the app it belongs to. */
    domains: `${prefix}:domains`,
    /** One app's custom domains. */
    appDomains: (name: string) => `${prefix}:app:${app(name)}:domains`,
    /** Each router → what it last gave its Caddy (see RouterRepository). */
    routers: `${prefix}:routers`,
  };
}

export type RecordKeys = ReturnType<typeof recordKeys>;

/** The keys under the default prefix. */
export const redisKeys: RecordKeys = recordKeys();
