import type { Redis } from "ioredis";
import { publish, RELEASE_CHANNEL, type CurrentReleasePointer, type Release } from "./contracts/index";
import type { ReleaseRepository } from "./records/releases";
import type { ObjectStore } from "./storage/object-store";
import { storageKeys } from "./storage/keys";

/**
 * Makes a release known: `apps/<app>/current-release.json` in storage (which agents read when
 * Redis is down), then the event on Redis that wakes the agents. The pointer is written only
 * while `release` is still the app's current one, so a late retry never moves it backwards.
 */
export async function announceRelease(
  deps: { redis: Redis; store: ObjectStore; releases: ReleaseRepository },
  app: string,
  release: Release,
  artifactSha256: string,
): Promise<void> {
  const current = await deps.releases.current(app);
  if (!current || current.version === release.version) {
    const pointer: CurrentReleasePointer = { version: release.version, buildId: release.buildId, sha256: artifactSha256, createdAt: release.createdAt };
    await deps.store.putBuffer(storageKeys.currentRelease(app), JSON.stringify(pointer), "application/json");
  }
  await publish(deps.redis, RELEASE_CHANNEL, { app, version: release.version, buildId: release.buildId });
}
