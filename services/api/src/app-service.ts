import { isTerminal } from "@slipway/shared";
import { cancelBuild } from "./build-service";
import type { ApiContext } from "./context";

/**
 * Deletes an app's records. Nothing stops silently: queued and running builds are canceled (and
 * listed), and the answer names the instances that were reporting, which keep serving their
 * current release until they are stopped (an agent never stops an app on its own).
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
  await ctx.apps.delete(name, buildIds);
  ctx.logger.info({ app: name, canceledBuilds, instances }, "app deleted");
  return {
    app: name,
    deleted: true as const,
    canceledBuilds,
    instances,
    message:
      instances.length > 0
        ? `records deleted; ${instances.length} instance(s) keep serving their current release until their agents are stopped; artifacts stay until GC`
        : "records deleted; artifacts stay until GC",
  };
}
