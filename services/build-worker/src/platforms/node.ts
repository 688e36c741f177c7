import { access } from "node:fs/promises";
import path from "node:path";
import semver from "semver";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import { choosePackageManager, managerCommands, registryPackage, type PackageManagerChoice } from "./node-package-managers";
import { hostNpmConfig, hostVersion, newestMatching, nodeBinaryPackage, nodeTool, npmForNode, NPM_NETWORK, NPM_QUIET, registryTool, SHIPPED_BIN_DIR, shipTools, verifyToolHash } from "./node-tools";
import type { CacheKey, Platform, PlatformContext, PlatformResult } from "./platform";

const exists = (file: string) => access(file).then(() => true, () => false);
// PRE_BUILD_COMMAND has run by now: the tree is the build's, so no links out and no FIFOs.
const readOptional = (file: string) => readUntrustedText(file);

interface PackageJson {
  scripts?: Record<string, string>;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  main?: string;
  packageManager?: unknown;
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

/** Scripts run after the install when package.json has them, in this order (Oryx's). */
const BUILD_SCRIPTS = ["build", "build:azure"];
/** Files started with `node` when there is no start script and no `main`, in this order (Oryx's). */
const START_FILES = ["bin/www", "server.js", "app.js", "index.js"];

/** What the build runs with: the worker's own toolchain, or tools from its tool cache. */
interface Toolchain {
  nodeVersion: string;
  /** Tool-cache directories whose `bin` goes first on PATH, and into the output. */
  nodeDir?: string;
  packageDirs: string[];
  managerVersion?: string;
}

/** A word for `sh -c` as it is, or single-quoted. */
const shellWord = (word: string) => (/^[\w./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`);

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
    const manager = await choosePackageManager(ctx.sourceDir, pkg.packageManager);
    const tools = await chooseToolchain(ctx, pkg, manager);
    const commands = managerCommands(manager, path.join(ctx.baseEnv.HOME!, ".pnpm-store"));

    const yarnrc = manager.berry ? ((await readOptional(path.join(ctx.sourceDir, ".yarnrc.yml"))) ?? "") : "";
    const binDirs = [tools.nodeDir, ...tools.packageDirs].filter((dir): dir is string => dir !== undefined).map((dir) => path.join(dir, "bin"));
    const env: Record<string, string> = {
      ...NPM_NETWORK,
      ...ctx.baseEnv,
      ...NPM_QUIET,
      PATH: [...binDirs, ctx.baseEnv.PATH].join(":"),
      // The output runs on the same kind of machine; a devDependency may be needed by `npm run build`.
      // (Each install command includes devDependencies itself, whatever NODE_ENV says.)
      NODE_ENV: ctx.options.NODE_ENV ?? "production",
      // The manager chosen here is the one that runs, whatever packageManager or corepack would say.
      COREPACK_ENABLE_STRICT: "0",
    };
    if (manager.name === "pnpm") Object.assign(env, { npm_config_manage_package_manager_versions: "false", npm_config_package_manager_strict: "false" });
    if (binDirs.length) {
      // An npm, pnpm or Node from the tool cache would look for the global npmrc beside itself: the
      // worker's (its registry, its CA) applies to them as to the worker's own npm. The CA npm
      // trusts is trusted by every Node program of the build (Yarn, pnpm, lifecycle scripts).
      const [globalconfig, cafile] = await Promise.all([hostNpmConfig("globalconfig"), hostNpmConfig("cafile")]);
      if (globalconfig && !env.npm_config_globalconfig) env.npm_config_globalconfig = globalconfig;
      if (cafile && !env.NODE_EXTRA_CA_CERTS) env.NODE_EXTRA_CA_CERTS = cafile;
    }
    // Native addons build against the headers of the Node they run on: the tool's, not the host's.
    if (tools.nodeDir) env.npm_config_nodedir = path.join(tools.nodeDir, "lib", "node_modules", nodeBinaryPackage());
    if (manager.berry) {
      Object.assign(env, { YARN_ENABLE_TELEMETRY: "0", YARN_ENABLE_GLOBAL_CACHE: "false", YARN_ENABLE_PROGRESS_BARS: "false" });
      // Plug'n'Play runs from the zips in the project's cache, which must ship; node_modules needs them only to install.
      if (!manager.pnp) env.YARN_CACHE_FOLDER = path.join(ctx.baseEnv.HOME!, ".yarn-cache");
      // Yarn 2+ has a registry default of its own; the worker's npm registry is the one it must use.
      const registry = ctx.baseEnv.npm_config_registry ?? (await hostNpmConfig("registry"));
      if (registry && !/^npmRegistryServer:/m.test(yarnrc)) env.YARN_NPM_REGISTRY_SERVER = registry.replace(/\/$/, "");
    }

    // Oryx's options: CUSTOM_BUILD_COMMAND replaces install and build; RUN_BUILD_COMMAND replaces the build scripts.
    if (ctx.options.CUSTOM_BUILD_COMMAND) {
      ctx.log(`Running CUSTOM_BUILD_COMMAND (instead of install and build): ${ctx.options.CUSTOM_BUILD_COMMAND}`);
      await ctx.run("/bin/sh", ["-c", ctx.options.CUSTOM_BUILD_COMMAND], { env, label: "CUSTOM_BUILD_COMMAND" });
    } else {
      await install(ctx, env, manager, tools, commands.install);
      if (ctx.options.RUN_BUILD_COMMAND) {
        ctx.log(`Running RUN_BUILD_COMMAND (instead of the build scripts): ${ctx.options.RUN_BUILD_COMMAND}`);
        await ctx.run("/bin/sh", ["-c", ctx.options.RUN_BUILD_COMMAND], { env, label: "RUN_BUILD_COMMAND" });
      } else {
        for (const script of BUILD_SCRIPTS) {
          if (!pkg.scripts?.[script]) continue;
          const command = commands.run(script);
          ctx.log(`Running ${command.join(" ")} ...`);
          await ctx.run(command[0]!, command.slice(1), { env, label: command.join(" ") });
        }
      }
    }
    if (ctx.options.PRUNE_DEV_DEPENDENCIES === "true") {
      ctx.log(`PRUNE_DEV_DEPENDENCIES=true: removing devDependencies (${commands.prune.join(" ")}) ...`);
      await ctx.run(commands.prune[0]!, commands.prune.slice(1), { env, label: "pruning devDependencies" });
    }

    const shipped = tools.nodeDir !== undefined || tools.packageDirs.length > 0;
    if (shipped) {
      await shipTools(ctx, { ...(tools.nodeDir ? { node: tools.nodeDir } : {}), packages: tools.packageDirs });
      ctx.log(`Shipping the build's ${[tools.nodeDir ? `Node ${tools.nodeVersion}` : "", ...tools.packageDirs.map((dir) => path.basename(dir))].filter(Boolean).join(", ")} in ${SHIPPED_BIN_DIR}: instances run them first on PATH`);
    }

    const deps = { ...pkg.dependencies, ...pkg.devDependencies };
    const frameworks = FRAMEWORKS.filter(([name]) => name in deps).map(([, label]) => label);
    const startupCommand = await chooseStartCommand(ctx, pkg, manager, commands.start);
    return {
      name: "nodejs",
      version: tools.nodeVersion,
      manifest: { nodeVersion: tools.nodeVersion, ...(shipped ? { nodeBinDir: SHIPPED_BIN_DIR } : {}) },
      frameworks,
      ...(startupCommand ? { startupCommand } : {}),
    };
  },
};

/**
 * Node from NODE_VERSION, else engines.node: the worker's own when it satisfies the range (as
 * before: nothing downloaded, nothing shipped), else the newest matching official release from the
 * npm registry with an npm that supports it; then the package manager the tree asks for.
 */
async function chooseToolchain(ctx: PlatformContext, pkg: PackageJson, manager: PackageManagerChoice): Promise<Toolchain> {
  const hostNode = await hostVersion("node");
  const wanted = ctx.options.NODE_VERSION ?? pkg.engines?.node;
  const source = ctx.options.NODE_VERSION ? "NODE_VERSION" : "package.json engines.node";
  const tools: Toolchain = { nodeVersion: hostNode, packageDirs: [] };
  if (wanted && !semver.validRange(wanted)) throw new BuildFailure(`the Node version "${wanted}" is not a version range`);
  const needsNode = wanted !== undefined && !semver.satisfies(hostNode, wanted);
  const wantedNpm = manager.name === "npm" ? manager.range : undefined;
  const hostNpm = needsNode || wantedNpm ? await hostVersion("npm") : undefined;

  if (needsNode) {
    ctx.log(`Node ${wanted} was requested (${source}) but this worker has ${hostNode}: looking for a matching release on the npm registry`);
    const version = await newestMatching(ctx, nodeBinaryPackage(), wanted, "Node").catch((error: Error) => {
      throw new BuildFailure(`Node ${wanted} was requested (${source}) but this worker has ${hostNode} and ${error.message.replace(/^.* but /, "")}`);
    });
    tools.nodeVersion = version;
    tools.nodeDir = await ctx.tool(nodeTool(ctx, version));
    ctx.log(`Using Node ${version} (wanted ${wanted}) from the worker's tool cache`);
  } else {
    ctx.log(`Using Node ${hostNode}${wanted ? ` (wanted ${wanted})` : ""}`);
  }

  // npm: packageManager's version; else, with another Node, one that supports it.
  const npmVersion = wantedNpm ?? (needsNode ? await npmForNode(ctx, tools.nodeVersion, hostNpm!) : undefined);
  if (npmVersion && (npmVersion !== hostNpm || needsNode)) {
    const npmDir = await ctx.tool(registryTool(ctx, "npm", "npm", npmVersion));
    if (manager.name === "npm" && manager.hash) await verifyToolHash(npmDir, manager.hash, `npm ${npmVersion}`);
    tools.packageDirs.push(npmDir);
    ctx.log(`Using npm ${npmVersion} from the worker's tool cache`);
  }

  if (manager.name !== "npm") {
    const label = manager.berry ? "Yarn 2+" : manager.name === "yarn" ? "Yarn 1" : "pnpm";
    const version = await newestMatching(ctx, registryPackage(manager), manager.range!, label);
    const dir = await ctx.tool(registryTool(ctx, manager.name, registryPackage(manager), version));
    if (manager.hash) await verifyToolHash(dir, manager.hash, `${manager.name} ${version}`);
    tools.packageDirs.push(dir);
    tools.managerVersion = version;
  }
  return tools;
}

/**
 * Installs the dependencies, through the dependency cache: npm and Yarn 1 cache node_modules (a
 * hit skips the install); Yarn 2+ its package cache and pnpm its store, from which the install
 * (always run) then links offline.
 */
async function install(ctx: PlatformContext, env: Record<string, string>, manager: PackageManagerChoice, tools: Toolchain, command: string[]): Promise<void> {
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

/**
 * The start command, in Oryx's order after the app's own startupCommand (which the runtime agent
 * puts first): a Procfile `web:` line (left to the runtime, which reads it), the start script run
 * by the app's package manager, `main`, then bin/www, server.js, app.js, index.js.
 */
async function chooseStartCommand(ctx: PlatformContext, pkg: PackageJson, manager: PackageManagerChoice, start: string): Promise<string | undefined> {
  const procfile = (await readOptional(path.join(ctx.sourceDir, "Procfile"))) ?? "";
  const web = /^web:[ \t]*(\S.*)$/m.exec(procfile);
  if (web) {
    ctx.log(`Start command: the Procfile's web: ${web[1]!.trim()}`);
    return undefined;
  }
  let command: string | undefined;
  if (pkg.scripts?.start) command = start;
  else {
    const main = typeof pkg.main === "string" ? [pkg.main, `${pkg.main}.js`] : [];
    for (const file of [...main, ...START_FILES]) {
      const full = path.resolve(ctx.sourceDir, file);
      if (!full.startsWith(`${ctx.sourceDir}${path.sep}`) || !(await exists(full))) continue;
      const relative = path.relative(ctx.sourceDir, full);
      // Plug'n'Play resolves modules only in a Node that Yarn has set up.
      command = `${manager.pnp ? "yarn node" : "node"} ${shellWord(relative)}`;
      break;
    }
  }
  ctx.log(command ? `Start command: ${command}` : "No start command found: set the app's startupCommand, add a Procfile web: line or a start script");
  return command;
}
