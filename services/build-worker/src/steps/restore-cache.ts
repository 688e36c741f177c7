import type { LayerCache } from "../platforms/platform";
import type { BuildSandbox } from "../sandbox";
import type { BuildContext } from "./build-context";
import { DependencyCache } from "./dependency-cache";

/**
 * Phase: the dependency cache the platform restores its layers from. Layers are restored when the
 * platform asks, not up front: only the platform knows their keys (lock text, runtime version).
 */
export function openLayerCache(ctx: BuildContext, sandbox: BuildSandbox, env: Record<string, string>): LayerCache {
  const { worker, build } = ctx;
  const cache = new DependencyCache({
    store: worker.store,
    digests: worker.cacheDigests,
    app: build.app,
    env,
    compression: worker.config.ARTIFACT_COMPRESSION,
    enabled: !ctx.noCache,
    scratchDir: ctx.workDir,
    afterRestore: (dir) => sandbox.own(dir),
    log: ctx.line,
    warn: (line) => {
      ctx.line(line);
      worker.logger.warn({ buildId: build.id, app: build.app }, line);
    },
  });
  return {
    restore: (key, dir) => ctx.phases.time("restore cache", () => cache.restore(key, dir)),
    save: (key, dir) => ctx.phases.time("save cache", () => cache.save(key, dir)),
  };
}
