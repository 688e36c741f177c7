import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownerSuffix, SandboxCgroup, sandboxCgroupParents } from "../../shared/src/sandbox/cgroup";
import { reapSandboxLeftovers } from "@slipway/shared/sandbox";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { processRunning, spawnWorker, startInProcessStack, uploadDir, writeTree, type InProcessStack } from "../harness/stack";
import os from "node:os";
import { mkdtemp, readdir, rm } from "node:fs/promises";

/**
 * A worker killed outright (SIGKILL, the OOM killer) takes its sandboxes with it, but left their
 * slirp4netns processes running and their cgroups behind, one set per build it was running.
 */
let stack: InProcessStack;
let work: string;
const workers: ReturnType<typeof spawnWorker>[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-leftovers-"));
  stack = await startInProcessStack({}, { worker: false });
});
afterAll(async () => {
  for (const worker of workers) worker.kill("SIGKILL");
  await stack?.close();
  await rm(work, { recursive: true, force: true });
});

/** slirp4netns processes and the pid each serves. */
function networks(): { pid: number; target: number }[] {
  const out = execFileSync("pgrep", ["-a", "slirp4netns"], { encoding: "utf8" }).trim();
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" "))
    .map((words) => ({ pid: Number(words[0]), target: Number(words.at(-2)) }));
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

function inCgroups(pid: number, cgroups: string[]): boolean {
  try {
    const own = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    return cgroups.some((group) => own.includes(`/${path.basename(group)}`));
  } catch {
    return false;
  }
}

async function buildCgroups(buildId: string): Promise<string[]> {
  const found: string[] = [];
  for (const parent of await sandboxCgroupParents()) {
    for (const name of await readdir(parent).catch(() => [] as string[])) if (name.startsWith(`slipway-build-${buildId}-`)) found.push(path.join(parent, name));
  }
  return found;
}

describe("a worker killed outright", () => {
  it("leaves no slirp4netns or cgroup once a worker starts again", async () => {
    const worker = spawnWorker(stack);
    workers.push(worker);
    const marker = `slipway-leftover-${Math.random().toString(36).slice(2)}`;
    const app = uniqueApp("leftover");
    await stack.api.apps.upsert(app, { buildEnv: { PRE_BUILD_COMMAND: `exec python3 -c 'import time; time.sleep(600)' ${marker}` } });
    const build = await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, app), { "app.py": "" }));
    await eventually(async () => (processRunning(marker) ? true : undefined), 120_000, "the build's command to run");
    const cgroups = await buildCgroups(build.id);
    expect(cgroups.length).toBeGreaterThan(0);
    // The build's network: the slirp4netns whose sandbox sits in one of the build's cgroups.
    const buildNetworks = networks().filter((n) => inCgroups(n.target, cgroups));
    expect(buildNetworks.length).toBeGreaterThan(0);

    // A SIGKILLed worker removes nothing itself; another test's service may reap its leftovers
    // before the next worker starts, so what is asserted is only that they are gone after it.
    worker.kill("SIGKILL");
    await eventually(async () => (buildNetworks.some((n) => alive(n.target)) ? undefined : true), 30_000, "the sandbox to die with its worker");

    workers.push(spawnWorker(stack));
    await eventually(async () => (buildNetworks.every((n) => !alive(n.pid)) && (await buildCgroups(build.id)).length === 0 ? true : undefined), 60_000, "the next worker to remove them");
  });
});

describe("an agent killed outright", () => {
  it("left its app sandbox's cgroup: the next start of a service removes the groups whose service no longer runs, and only those", async () => {
    // The pid of a process that has ended, as a killed agent's is.
    const gone = Number(execFileSync("sh", ["-c", "sh -c 'echo $$'"], { encoding: "utf8" }).trim());
    const limits = { memoryBytes: 64 * 1024 ** 2, maxProcesses: 8 };
    const name = `app-leftover-i-1-123${ownerSuffix(gone)}`;
    await SandboxCgroup.create(name, limits);
    const live = await SandboxCgroup.create(`app-live-i-1-123${ownerSuffix()}`, limits);
    const groups = async () => (await Promise.all((await sandboxCgroupParents()).map((parent) => readdir(parent)))).flat();
    expect(await groups()).toContain(`slipway-${name}`);

    await reapSandboxLeftovers();
    expect(await groups()).not.toContain(`slipway-${name}`);
    expect(await groups()).toContain(`slipway-app-live-i-1-123${ownerSuffix()}`);
    await live.destroy(0);
  });
});
