import { randomUUID } from "node:crypto";
import { storageKeys, type AppRecord, type Build } from "@slipway/shared";
import { enqueueBuild } from "./build-service";
import type { ApiContext } from "./context";

/**
 * Rebuilds the app's latest source. While a rebuild of the same source (with the same noCache)
 * is still queued, further requests get that build instead of a second one.
 */
export async function rebuildApp(ctx: ApiContext, app: AppRecord, noCache: boolean, requestId: string): Promise<{ build: Build; coalesced: boolean }> {
  const sha256 = app.latestSourceSha256!;
  const source = { key: app.latestSourceKey ?? storageKeys.source(app.name, sha256), sha256 };
  const rebuild = { app: app.name, sourceSha256: sha256, noCache };
  for (let attempt = 0; attempt < 50; attempt++) {
    const id = randomUUID();
    const claimedId = await ctx.builds.claimRebuild(rebuild, id);
    if (claimedId === id) {
      try {
        return { build: await enqueueBuild(ctx, { app: app.name, source, deploy: true, noCache, requestId, id }), coalesced: false };
      } catch (error) {
        await ctx.builds.releaseRebuildClaim(rebuild, id);
        throw error;
      }
    }
    if (!claimedId) continue;
    const claimed = await ctx.builds.get(claimedId);
    if (claimed?.status === "queued") return { build: claimed, coalesced: true };
    if (!claimed) {
      // Another request is creating it right now.
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    // That rebuild has started (or ended): a new request means a new build.
    await ctx.builds.releaseRebuildClaim(rebuild, claimedId);
  }
  throw new Error("could not coalesce the rebuild request");
}
