import type { AppRepository } from "./records/apps";
import type { BuildRepository } from "./records/builds";
import type { InstanceRepository } from "./records/instances";
import type { ReleaseRepository } from "./records/releases";
import { storageKeys } from "./storage/keys";
import type { ObjectStore } from "./storage/object-store";
import { isTerminal, type GcReport } from "./contracts/index";

export interface GcDeps {
  store: ObjectStore;
  apps: AppRepository;
  builds: BuildRepository;
  releases: ReleaseRepository;
  instances: InstanceRepository;
}

/**
 * Deletes an app's old build outputs and sources from storage, keeping: the builds of its newest
 * `retain` releases and of the current one, its newest `retain` builds, any build not finished,
 * any build an instance reports running, and the sources of everything kept plus the latest
 * upload, and any source stored in the last `sourceGraceMs` (its build may not be recorded yet).
 * Records stay; a release of a collected build is refused by the API.
 */
export async function collectGarbage(deps: GcDeps, app: string, retain: number, sourceGraceMs: number): Promise<GcReport> {
  // Taken before anything is read: a source stored since cannot be referenced by what is read below.
  const sourcesBefore = Date.now() - sourceGraceMs;
  const keep = new Set<string>();
  for (const release of await deps.releases.list(app, retain)) keep.add(release.buildId);
  const current = await deps.releases.current(app);
  if (current) keep.add(current.buildId);
  for (const instance of await deps.instances.list(app)) if (instance.buildId) keep.add(instance.buildId);

  const allIds = await deps.builds.idsForApp(app); // oldest first
  const newest = allIds.slice(-retain);
  for (const id of newest) keep.add(id);
  const keptSources = new Set<string>();
  const appRecord = await deps.apps.get(app);
  if (appRecord?.latestSourceKey) keptSources.add(appRecord.latestSourceKey);

  const report: GcReport = { app, retain, keptBuilds: [], deletedBuilds: [], deletedSources: [], deletedObjects: 0 };
  const candidates: string[] = [];
  for (const id of allIds) {
    const build = await deps.builds.get(id);
    if (!build) continue;
    if (keep.has(id) || !isTerminal(build.status)) {
      keptSources.add(build.sourceKey);
      report.keptBuilds.push(id);
    } else {
      candidates.push(id);
    }
  }
  for (const id of candidates) {
    const keys = await deps.store.list(storageKeys.buildPrefix(app, id));
    // The manifest first: without it the build no longer counts as complete anywhere.
    keys.sort((a, b) => Number(b.endsWith("oryx-manifest.toml")) - Number(a.endsWith("oryx-manifest.toml")));
    for (const key of keys) await deps.store.remove(key);
    report.deletedObjects += keys.length;
    if (keys.length > 0) report.deletedBuilds.push(id);
  }
  for (const { key, lastModified } of await deps.store.listWithTimes(storageKeys.sourcesPrefix(app))) {
    if (keptSources.has(key) || lastModified.getTime() > sourcesBefore) continue;
    await deps.store.remove(key);
    report.deletedSources.push(key);
    report.deletedObjects += 1;
  }
  return report;
}
