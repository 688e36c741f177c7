import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import semver from "semver";
import { BuildFailure } from "../errors";

/**
 * The worker's own npm, run on its host with the worker's environment and npm configuration only.
 * Which tools a build gets (another Node, npm, Yarn, pnpm) and where they come from is the
 * worker's decision: a build's `npm_config_registry` or npmrc must never choose the bytes that the
 * tool cache then hands to every other app on the host. Nothing here runs code of a package: it
 * asks the registry and downloads tarballs.
 */

/** PATH, HOME and the locale of the worker, plus its own `npm_config_*` settings (an operator's registry). */
export function workerNpmEnvironment(): NodeJS.ProcessEnv {
  const npmSettings = Object.entries(process.env).filter(([name]) => name.toLowerCase().startsWith("npm_config_"));
  return { PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG ?? "C.UTF-8", ...Object.fromEntries(npmSettings) };
}

function workerCommand(command: string, args: string[], options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      command,
      args,
      { env: workerNpmEnvironment(), cwd: "/", timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, ...(options.signal ? { signal: options.signal } : {}) },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const reason = `${stderr}`.split("\n").find((line) => /ERR!|error/i.test(line)) ?? error.message.split("\n")[0];
        reject(new WorkerNpmError(`${command} ${args[0]} failed: ${reason?.trim()}`));
      },
    ),
  );
}

class WorkerNpmError extends Error {}

/** `node --version` or `npm --version` of the worker's own toolchain (what builds get without a tool). */
export function hostVersion(command: "node" | "npm"): Promise<string> {
  return workerCommand(command, ["--version"], { timeoutMs: 30_000 }).then(
    (out) => out.trim().replace(/^v/, ""),
    () => {
      throw new BuildFailure(`this worker has no working ${command}`);
    },
  );
}

/** One setting of the worker's own npm configuration (its global npmrc: registry, CA), undefined when unset. */
export async function hostNpmConfig(key: string): Promise<string | undefined> {
  const value = await workerCommand("npm", ["config", "get", key], { timeoutMs: 30_000 }).then((out) => out.trim(), () => undefined);
  return !value || value === "undefined" || value === "null" ? undefined : value;
}

/** `npm view <args> --json` with the worker's registry; the answer parsed. */
export async function workerRegistryView(args: string[], label: string): Promise<unknown> {
  const text = await workerCommand("npm", ["view", ...args, "--json"]).catch((error: Error) => {
    throw new BuildFailure(`${label}: ${error.message}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    throw new BuildFailure(`${label}: npm view answered something that is not JSON`);
  }
}

/** What identifies a registry package's tarball: where the worker got it and the registry's integrity for it. */
export interface RegistryTarball {
  pkg: string;
  version: string;
  registry: string;
  /** The registry's Subresource Integrity string (`sha512-<base64>`), as the worker asked for it. */
  integrity: string;
}

/** The worker's registry and the integrity it publishes for `pkg@version` (an exact version). */
export async function registryTarball(pkg: string, version: string): Promise<RegistryTarball> {
  if (!semver.valid(version)) throw new BuildFailure(`${pkg} ${version} is not an exact version`);
  const [registry, answer] = await Promise.all([hostNpmConfig("registry"), workerRegistryView([`${pkg}@${version}`, "dist.integrity"], `looking up ${pkg} ${version}`)]);
  if (typeof answer !== "string" || !strongestDigest(answer)) throw new BuildFailure(`the npm registry gives no sha512 integrity for ${pkg} ${version}`);
  return { pkg, version, registry: registry ?? "(npm's default registry)", integrity: answer };
}

/**
 * Downloads the tarball with the worker's npm into a directory of the worker's own and checks it
 * against `tarball.integrity` before anything else reads it; answers the file's path and a way to
 * remove it. A registry whose answer changed between the two requests fails the install.
 */
export async function downloadVerified(tarball: RegistryTarball, signal?: AbortSignal): Promise<{ file: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "slipway-tool-pack-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    await workerCommand("npm", ["pack", `${tarball.pkg}@${tarball.version}`, "--pack-destination", dir, "--loglevel=warn"], { timeoutMs: 15 * 60_000, ...(signal ? { signal } : {}) }).catch(
      (error: Error) => {
        throw new BuildFailure(`downloading ${tarball.pkg} ${tarball.version}: ${error.message}`);
      },
    );
    const files = (await readdir(dir)).filter((name) => name.endsWith(".tgz"));
    if (files.length !== 1) throw new BuildFailure(`downloading ${tarball.pkg} ${tarball.version}: npm pack left ${files.length} tarballs`);
    const file = path.join(dir, files[0]!);
    await checkIntegrity(file, tarball.integrity, `${tarball.pkg} ${tarball.version}`);
    return { file, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** The sha512 entry of an SRI string (npm's registry publishes sha512; older entries may add sha1). */
function strongestDigest(integrity: string): string | undefined {
  return integrity
    .split(/\s+/)
    .find((entry) => /^sha512-[A-Za-z0-9+/]+={0,2}$/.test(entry))
    ?.slice("sha512-".length);
}

/** Fails unless `file`'s sha512 is the one `integrity` gives. */
export async function checkIntegrity(file: string, integrity: string, what: string): Promise<void> {
  const expected = strongestDigest(integrity);
  if (!expected) throw new BuildFailure(`${what}: no sha512 integrity to check it against`);
  const digest = createHash("sha512");
  for await (const chunk of createReadStream(file)) digest.update(chunk as Buffer);
  const actual = digest.digest("base64");
  if (actual !== expected) throw new BuildFailure(`${what} does not match the integrity the npm registry gave the worker (sha512-${expected}); got sha512-${actual}`);
}
