/** Every Redis key Slipway writes, in one place. */
const prefix = "slipway";
export const redisKeys = {
  apps: `${prefix}:apps`,
  buildSeq: `${prefix}:build-seq`,
  queuedRebuild: (app: string, sourceSha256: string, noCache: boolean) => `${prefix}:app:${app}:queued-rebuild:${sourceSha256}:${noCache ? "fresh" : "cached"}`,
  app: (app: string) => `${prefix}:app:${app}`,
  appBuilds: (app: string) => `${prefix}:app:${app}:builds`,
  releases: (app: string) => `${prefix}:app:${app}:releases`,
  releaseSeq: (app: string) => `${prefix}:app:${app}:release-seq`,
  currentRelease: (app: string) => `${prefix}:app:${app}:current-release`,
  rollout: (app: string, version: number) => `${prefix}:app:${app}:rollout:${version}`,
  rolloutHolders: (app: string, version: number) => `${prefix}:app:${app}:rollout:${version}:holders`,
  instances: (app: string) => `${prefix}:app:${app}:instances`,
  /** Dependency-cache object key → the sha256 its worker packed (see CacheDigestRepository). */
  cacheDigests: (app: string) => `${prefix}:app:${app}:cache-digests`,
  build: (buildId: string) => `${prefix}:build:${buildId}`,
  buildLog: (buildId: string) => `${prefix}:build:${buildId}:log`,
};
