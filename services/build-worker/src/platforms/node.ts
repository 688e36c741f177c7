import { execFile } from "node:child_process";
import { access } from "node:fs/promises";
import path from "node:path";
import semver from "semver";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import type { Platform, PlatformContext, PlatformResult } from "./platform";

const exists = (file: string) => access(file).then(() => true, () => false);
// PRE_BUILD_COMMAND has run by now: the tree is the build's, so no links out and no FIFOs.
const readOptional = (file: string) => readUntrustedText(file);

interface PackageJson {
  scripts?: Record<string, string>;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  main?: string;
}

const FRAMEWORKS: [pkg: string, label: string][] = [
  ["express", "Express"],
  ["next", "Next.js"],
  ["fastify", "Fastify"],
  ["koa", "Koa"],
  ["@nestjs/core", "NestJS"],
  ["react", "React"],
  ["vue", "Vue.js"],
  ["@angular/core", "Angular"],
];

function installedNodeVersion(env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("node", ["--version"], { env }, (error, stdout) => (error ? reject(new BuildFailure("this worker has no working node")) : resolve(stdout.trim().replace(/^v/, "")))),
  );
}

export const node: Platform = {
  name: "nodejs",

  async detect(sourceDir) {
    return (await exists(path.join(sourceDir, "package.json"))) ? "strong" : false;
  },

  async build(ctx: PlatformContext): Promise<PlatformResult> {
    let pkg: PackageJson;
    try {
      pkg = JSON.parse((await readOptional(path.join(ctx.sourceDir, "package.json"))) ?? "") as PackageJson;
    } catch (error) {
      throw new BuildFailure(`package.json does not parse: ${(error as Error).message}`);
    }
    const version = await installedNodeVersion(ctx.baseEnv);
    const wanted = ctx.options.NODE_VERSION ?? pkg.engines?.node;
    if (wanted) {
      if (!semver.validRange(wanted)) throw new BuildFailure(`the Node version "${wanted}" is not a version range`);
      if (!semver.satisfies(version, wanted)) {
        throw new BuildFailure(`Node ${wanted} was requested (${ctx.options.NODE_VERSION ? "NODE_VERSION" : "package.json engines.node"}) but this worker has ${version}`);
      }
    }
    ctx.log(`Using Node ${version}${wanted ? ` (wanted ${wanted})` : ""}`);

    const env = {
      ...ctx.baseEnv,
      npm_config_update_notifier: "false",
      npm_config_fund: "false",
      npm_config_audit: "false",
      npm_config_progress: "false",
      // The output runs on the same kind of machine; a devDependency may be needed by `npm run build`.
      NODE_ENV: ctx.options.NODE_ENV ?? "production",
      npm_config_production: "false",
    };
    const lockText = (await readOptional(path.join(ctx.sourceDir, "package-lock.json"))) ?? (await readOptional(path.join(ctx.sourceDir, "npm-shrinkwrap.json")));
    // With a lockfile the install is pinned by it; without one, package.json is the best key there is.
    const cacheKey = { layer: "node_modules", inputs: { node: version, lock: lockText ?? "", packageJson: lockText ? "" : JSON.stringify(pkg) } };
    const nodeModules = path.join(ctx.sourceDir, "node_modules");
    // A node_modules shipped in the source is installed over, never replaced from the cache.
    if (!(await exists(nodeModules)) && (await ctx.cache.restore(cacheKey, nodeModules))) {
      ctx.log("Skipping npm install: node_modules restored from the cache");
    } else {
      if (lockText !== undefined) {
        ctx.log("Running npm ci ...");
        await ctx.run("npm", ["ci", "--include=dev"], { env, label: "npm ci" });
      } else {
        ctx.log("No lockfile: running npm install ...");
        await ctx.run("npm", ["install", "--include=dev"], { env, label: "npm install" });
      }
      await ctx.cache.save(cacheKey, nodeModules);
    }
    if (pkg.scripts?.build) {
      ctx.log("Running npm run build ...");
      await ctx.run("npm", ["run", "build"], { env, label: "npm run build" });
    }

    const deps = { ...pkg.dependencies, ...pkg.devDependencies };
    const frameworks = FRAMEWORKS.filter(([name]) => name in deps).map(([, label]) => label);
    let startupCommand: string | undefined;
    if (pkg.scripts?.start) startupCommand = "npm start";
    else {
      for (const file of [pkg.main, "server.js", "app.js", "index.js"]) {
        if (file && (await exists(path.join(ctx.sourceDir, file)))) {
          startupCommand = `node ${file}`;
          break;
        }
      }
    }
    return { name: "nodejs", version, manifest: { nodeVersion: version }, frameworks, ...(startupCommand ? { startupCommand } : {}) };
  },
};
