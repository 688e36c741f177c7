import path from "node:path";
import { readOptional } from "./node-package-json";
import type { PackageManagerChoice } from "./node-package-managers";
import type { Toolchain } from "./node-toolchain";
import type { CacheKey, PlatformContext } from "./platform";
import { exists } from "./fs-checks";

/**
 * Installs the dependencies, through the dependency cache: npm and Yarn 1 cache node_modules (a
 * hit skips the install); Yarn 2+ its package cache and pnpm its store, from which the install
 * (always run) then links offline.
 */
export async function installDependencies(ctx: PlatformContext, env: Record<string, string>, manager: PackageManagerChoice, tools: Toolchain, command: string[]): Promise<void> {
  const managerLabel = manager.name === "npm" ? "npm" : `${manager.name} ${tools.managerVersion}`;
  ctx.log(`Package manager: ${managerLabel} (${manager.reason})`);
  for (const file of manager.ignoredLockFiles) ctx.log(`Ignoring ${file}: ${manager.lockFile} decides the install`);
  const lock = manager.lockText;
  // With a lockfile the install is pinned by it; without one, package.json is the best key there is.
  const packageJson = lock === undefined ? ((await readOptional(path.join(ctx.sourceDir, "package.json"))) ?? "") : "";
  const inputs: Record<string, string> = { node: tools.nodeVersion, lock: lock ?? "", packageJson };
  if (manager.name !== "npm" || tools.packageDirs.length) inputs.manager = `${managerLabel}${manager.berry ? (manager.pnp ? " pnp" : " node-modules") : ""}`;
  const installing = `Running ${command.join(" ")} ...`;

  if (manager.name === "npm" || (manager.name === "yarn" && !manager.berry)) {
    const key: CacheKey = { layer: "node_modules", inputs };
    const nodeModules = path.join(ctx.sourceDir, "node_modules");
    // A node_modules shipped in the source is installed over, never replaced from the cache.
    if (!(await exists(nodeModules)) && (await ctx.cache.restore(key, nodeModules))) {
      ctx.log(`Skipping ${manager.name} install: node_modules restored from the cache`);
      return;
    }
    ctx.log(lock === undefined ? `No lockfile: ${installing.replace(/^R/, "r")}` : installing);
    await ctx.run(command[0]!, command.slice(1), { env, label: command.slice(0, 2).join(" ") });
    await ctx.cache.save(key, nodeModules);
    return;
  }

  // Yarn 2+ and pnpm: the package cache is the layer; a cache the source ships (zero-installs) is its own.
  const layerDir = manager.name === "pnpm" ? path.join(env.HOME!, ".pnpm-store") : manager.pnp ? path.join(ctx.sourceDir, ".yarn", "cache") : env.YARN_CACHE_FOLDER!;
  const key: CacheKey = { layer: manager.name === "pnpm" ? "pnpm-store" : "yarn-cache", inputs };
  const own = !(await exists(layerDir));
  // The worker restores the layer itself: the directory above it (.yarn) must be the build's already.
  if (own && !(await exists(path.dirname(layerDir)))) await ctx.run("mkdir", ["-p", path.dirname(layerDir)], { env, label: "mkdir" });
  const restored = own && (await ctx.cache.restore(key, layerDir));
  ctx.log(lock === undefined ? `No lockfile: ${installing.replace(/^R/, "r")}` : installing);
  await ctx.run(command[0]!, command.slice(1), { env, label: command.slice(0, 2).join(" ") });
  if (own && !restored && (await exists(layerDir))) await ctx.cache.save(key, layerDir);
}
