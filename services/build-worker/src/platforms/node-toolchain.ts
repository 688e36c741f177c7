import path from "node:path";
import semver from "semver";
import { BuildFailure } from "../errors";
import { readOptional, type PackageJson } from "./node-package-json";
import { registryPackage, type PackageManagerChoice } from "./node-package-managers";
import { newestMatching, nodeBinaryPackage, nodeTool, npmForNode, NPM_NETWORK, NPM_QUIET, registryTool, verifyToolHash } from "./node-tools";
import { hostNpmConfig, hostVersion } from "./worker-npm";
import type { PlatformContext } from "./platform";

/** What the build runs with: the worker's own toolchain, or tools from its tool cache. */
export interface Toolchain {
  nodeVersion: string;
  /** Tool-cache directories whose `bin` goes first on PATH, and into the output. */
  nodeDir?: string;
  packageDirs: string[];
  managerVersion?: string;
}

/**
 * Node from NODE_VERSION, else engines.node: the worker's own when it satisfies the range (as
 * before: nothing downloaded, nothing shipped), else the newest matching official release from the
 * npm registry with an npm that supports it; then the package manager the tree asks for. Versions
 * and tools come from the worker's registry, whatever registry the build's options name: the
 * tools are shared by every build on the host.
 */
export async function chooseToolchain(ctx: PlatformContext, pkg: PackageJson, manager: PackageManagerChoice): Promise<Toolchain> {
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
    const version = await newestMatching(nodeBinaryPackage(), wanted, "Node").catch((error: Error) => {
      throw new BuildFailure(`Node ${wanted} was requested (${source}) but this worker has ${hostNode} and ${error.message.replace(/^.* but /, "")}`);
    });
    tools.nodeVersion = version;
    tools.nodeDir = await ctx.tool(await nodeTool(version));
    ctx.log(`Using Node ${version} (wanted ${wanted}) from the worker's tool cache`);
  } else {
    ctx.log(`Using Node ${hostNode}${wanted ? ` (wanted ${wanted})` : ""}`);
  }

  // npm: packageManager's version; else, with another Node, one that supports it.
  const npmVersion = wantedNpm ?? (needsNode ? await npmForNode(tools.nodeVersion, hostNpm!) : undefined);
  if (npmVersion && (npmVersion !== hostNpm || needsNode)) {
    const npmDir = await ctx.tool(await registryTool("npm", "npm", npmVersion));
    if (manager.name === "npm" && manager.hash) await verifyToolHash(npmDir, manager.hash, `npm ${npmVersion}`);
    tools.packageDirs.push(npmDir);
    ctx.log(`Using npm ${npmVersion} from the worker's tool cache`);
  }

  if (manager.name !== "npm") {
    const label = manager.berry ? "Yarn 2+" : manager.name === "yarn" ? "Yarn 1" : "pnpm";
    const version = await newestMatching(registryPackage(manager), manager.range!, label);
    const dir = await ctx.tool(await registryTool(manager.name, registryPackage(manager), version));
    if (manager.hash) await verifyToolHash(dir, manager.hash, `${manager.name} ${version}`);
    tools.packageDirs.push(dir);
    tools.managerVersion = version;
  }
  return tools;
}

/** The environment of the install and build commands: the chosen tools first on PATH, their registry and CA settings. */
export async function toolchainEnv(ctx: PlatformContext, manager: PackageManagerChoice, tools: Toolchain): Promise<Record<string, string>> {
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
  return env;
}
