import { isTerminal } from "@slipway/shared";
import { cancelBuild } from "./build-service";
import type { ApiContext } from "./context";

/**
 * Deletes an app's records. Nothing stops silently: queued and running builds are canceled (and
 * listed), the instances hosts run are stopped, and the answer names the instances that were
 * reporting; one an operator started by hand keeps serving its current release until stopped.
 * Artifacts and sources stay in storage until garbage collection.
 */
export async function deleteApp(ctx: ApiContext, name: string) {
  const buildIds = await ctx.builds.idsForApp(name);
  const canceledBuilds: string[] = [];
  for (const id of buildIds) {
    const build = await ctx.builds.get(id);
    if (build && !isTerminal(build.status)) {
      await cancelBuild(ctx, build).catch(() => undefined);
      canceledBuilds.push(id);
    }
  }
  const instances = (await ctx.instances.list(name)).map((instance) => instance.instanceId);
  const placed = (await ctx.placements.hostsOf(name)).size;
  // The record goes first, so no placement pass running meanwhile places it again; then its hosts stop its instances.
  await ctx.apps.delete(name, buildIds);
  await ctx.placements.unplaceApp(name);
  await ctx.domains.removeAll(name);
  await ctx.instances.announce(name);
  ctx.logger.info({ app: name, canceledBuilds, instances }, "app deleted");
  return {
    app: name,
    deleted: true as const,
    canceledBuilds,
    instances,
    message:
      placed > 0
        ? `records deleted; its ${placed} instance(s) are being stopped by their hosts; artifacts stay until GC`
        : instances.length > 0
        ? `records deleted; ${instances.length} instance(s) keep serving their current release until their agents are stopped; artifacts stay until GC`
        : "records deleted; artifacts stay until GC",
  };
}
