import { STALE_INSTANCE_MS, type AppRepository, type DomainRepository, type InstanceReport, type InstanceRepository, type PlacementRepository, type ReleaseRepository } from "@slipway/shared";
import type { AppRoute } from "./caddy-config";

export interface RouteSources {
  apps: Pick<AppRepository, "list">;
  releases: Pick<ReleaseRepository, "current">;
  instances: Pick<InstanceRepository, "list">;
  placements: Pick<PlacementRepository, "hostsOf">;
  domains: Pick<DomainRepository, "list">;
}

/** Every app's route as Redis has it at `nowMs` (Redis's clock). */
export async function readRoutes(sources: RouteSources, domain: string, nowMs: number): Promise<AppRoute[]> {
  const apps = await sources.apps.list();
  return Promise.all(
    apps.map(async (app) => {
      const [current, reports, placed, domains] = await Promise.all([
        sources.releases.current(app.name),
        sources.instances.list(app.name),
        sources.placements.hostsOf(app.name),
        sources.domains.list(app.name),
      ]);
      return {
        app: app.name,
        hosts: [`${app.name}.${domain}`, ...domains],
        upstreams: routableInstances(reports, placed, current?.version, nowMs),
        affinity: app.affinity ?? false,
      };
    }),
  );
}

/**
 * The instances that take requests: serving a release (one that restores or starts the next
 * keeps serving the previous: its own proxy health-gates the switch), not draining, still placed
 * on the host that reports it, heard from recently, and serving the app's current release. While
 * none serves the current release yet (a rollout's first moments, a release whose canary failed)
 * those serving an earlier one take the requests, so an app never goes dark because a release is
 * under way. Sorted, so equal tables give equal configurations.
 */
export function routableInstances(reports: InstanceReport[], placed: Map<string, string>, currentVersion: number | undefined, nowMs: number): string[] {
  const live = reports.filter(
    (report) =>
      typeof report.servingRelease === "number" &&
      report.state !== "draining" &&
      report.host !== undefined &&
      report.address !== undefined &&
      report.port !== undefined &&
      placed.get(report.instanceId) === report.host &&
      nowMs - Date.parse(report.lastHeartbeatAt) < STALE_INSTANCE_MS,
  );
  const current = live.filter((report) => report.servingRelease === currentVersion);
  return (current.length > 0 ? current : live).map((report) => dialAddress(report.address!, report.port!)).sort();
}

/** `host:port`, an IPv6 address in brackets. */
function dialAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
