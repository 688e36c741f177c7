import { spawnSync } from "node:child_process";
import { writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { HostStatus, InstanceResponse } from "@slipway/shared";
import { labelApp } from "./harness/apps";
import { uniqueApp } from "./harness/env";
import { spawnHost, type SpawnedHost } from "./harness/hosts";
import { json } from "./harness/http";
import { eventually } from "./harness/local-stack";
import { processRunning } from "./harness/stack";
import { useStack } from "./harness/use-stack";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// Hosts beat every 600 ms and are lost after 3 s of silence: the cases run in seconds.
const HOST_DEAD_S = 3;
const { stack, work, deploy } = useStack("hosts", { env: { HOST_DEAD_S: String(HOST_DEAD_S) } });
const spawned: SpawnedHost[] = [];

afterAll(async () => {
  for (const host of spawned) {
    host.child.kill("SIGCONT");
    host.child.kill("SIGTERM");
  }
  await Promise.all(spawned.map((host) => host.exited));
  // What the host killed outright left (its next start would remove it).
  for (const host of spawned) await host.removeNetworks();
});

async function startHost(id: string): Promise<SpawnedHost> {
  const host = await spawnHost(stack, id, work, {}, 8);
  spawned.push(host);
  return host;
}

const api = (route: string, init?: RequestInit) => fetch(`${stack.baseUrl}/v1${route}`, init);
const scale = async (app: string, instances: number) => json<{ instances: number; placed: number }>(await api(`/apps/${app}/scale`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ instances }) }));
const instancesOf = async (app: string) => json<InstanceResponse[]>(await api(`/apps/${app}/instances`));
const hostsNow = async () => json<HostStatus[]>(await api("/hosts"));
const answer = (address: string, port: number) => fetch(`http://${address}:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => undefined);

/** Waits until exactly `count` instances of `app` report running and each answers `label` on its address and port. */
async function serving(app: string, label: string, count: number, onHosts?: string[]) {
  return eventually(
    async () => {
      const running = (await instancesOf(app)).filter((i) => i.state === "running");
      if (running.length !== count) return undefined;
      if (onHosts && running.some((i) => !onHosts.includes(i.host!))) return undefined;
      const answers = await Promise.all(running.map((i) => answer(i.address!, i.port!)));
      return answers.every((text) => text === label) ? running : undefined;
    },
    120_000,
    `${count} instances of ${app} serving ${label}${onHosts ? ` on ${onHosts.join(", ")}` : ""}`,
  );
}

const healthcheck = (host: SpawnedHost) =>
  spawnSync(process.execPath, [path.join(repoRoot, "services/runtime-agent/dist/healthcheck.js")], { env: { ...process.env, RUNTIME_ROOT: path.join(work, host.id, "runtime") }, encoding: "utf8" });

const countByHost = (instances: { host?: string }[]) => {
  const counts: Record<string, number> = {};
  for (const { host } of instances) counts[host!] = (counts[host!] ?? 0) + 1;
  return counts;
};

describe("apps on a pool of host agents", () => {
  const app = uniqueApp("pool");
  let hosts: SpawnedHost[];
  /** What the instances serve: the second release once it has rolled out. */
  let label = "pool-v1";

  it("scale 0→6 on three hosts places 2/2/2, and every instance serves at its host's address and port", async () => {
    hosts = await Promise.all(["pool-a", "pool-b", "pool-c"].map(startHost));
    await eventually(async () => ((await hostsNow()).filter((h) => h.id.startsWith("pool-") && h.state === "ready").length === 3 ? true : undefined), 60_000, "three ready hosts");
    const dir = path.join(work, "src");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "app.py"), labelApp("pool-v1"));
    expect((await api(`/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" })).status).toBe(201);
    expect(await scale(app, 0)).toMatchObject({ instances: 0, placed: 0 });
    const { build } = await deploy(app, dir);
    expect(build.status).toBe("succeeded");
    expect(await scale(app, 6)).toMatchObject({ instances: 6, placed: 6 });
    const running = await serving(app, "pool-v1", 6);
    expect(countByHost(running)).toEqual({ "pool-a": 2, "pool-b": 2, "pool-c": 2 });
    const listed = await hostsNow();
    for (const id of ["pool-a", "pool-b", "pool-c"]) expect(listed.find((h) => h.id === id)!.instances.filter((i) => i.app === app)).toHaveLength(2);
    expect(await json(await api(`/apps/${app}`))).toMatchObject({ instances: 6, placed: 6 });
  });

  it("a release rolls across all six instances on three hosts, canary first, while a steady request loop sees no failed request", async () => {
    const targets = (await instancesOf(app)).map((i) => `http://${i.address}:${i.port}/`);
    expect(targets).toHaveLength(6);
    let requests = 0;
    const failures: string[] = [];
    let looping = true;
    const loop = (async () => {
      for (let k = 0; looping; k++) {
        const url = targets[k % targets.length]!;
        const text = await fetch(url, { signal: AbortSignal.timeout(10_000) }).then((r) => (r.ok ? r.text() : `HTTP ${r.status}`), (error: Error) => error.message);
        requests += 1;
        if (text !== "pool-v1" && text !== "pool-v2") failures.push(`${url}: ${text}`);
      }
    })();
    const dir = path.join(work, "src-v2");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "app.py"), labelApp("pool-v2"));
    try {
      expect((await deploy(app, dir)).build.status).toBe("succeeded");
      await serving(app, "pool-v2", 6);
    } finally {
      looping = false;
      await loop;
    }
    label = "pool-v2";
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(60);
    const [release] = await json<{ version: number; state: string }[]>(await api(`/apps/${app}/releases`));
    expect(release).toMatchObject({ version: 2 });
    await eventually(async () => ((await json<{ state: string }[]>(await api(`/apps/${app}/releases`)))[0]!.state === "complete" ? true : undefined), 30_000, "the rollout complete");
  });

  it("a host agent killed outright: its instances serve on the other hosts, and nothing of them runs on it", async () => {
    const dead = hosts[2]!;
    const before = (await instancesOf(app)).filter((i) => i.host === dead.id);
    dead.child.kill("SIGKILL");
    await dead.exited;
    const running = await serving(app, label, 6, ["pool-a", "pool-b"]);
    expect(countByHost(running)).toEqual({ "pool-a": 3, "pool-b": 3 });
    // Its apps died with it: their ports answer nothing.
    for (const instance of before) expect(await answer(instance.address!, instance.port!)).toBeUndefined();
    expect((await hostsNow()).find((h) => h.id === dead.id)).toMatchObject({ state: "lost", instances: [] });
    // The container healthcheck: healthy while the agent's heartbeats are answered, not after its death.
    expect(healthcheck(hosts[0]!)).toMatchObject({ status: 0, stdout: "host agent healthy\n" });
    expect(healthcheck(dead)).toMatchObject({ status: 1, stderr: expect.stringMatching(/^host agent unhealthy: last heartbeat \d+ s ago/) });
  });

  it("a host cut off while its apps keep running: its instances move, and when it is back it stops the stale ones before anything else", async () => {
    const stale = hosts[1]!;
    const staleInstances = (await instancesOf(app)).filter((i) => i.host === stale.id);
    expect(staleInstances).toHaveLength(3);
    // A frozen agent is a partition as the control plane sees it: no heartbeat, while its apps (and
    // their sandboxes, named by each instance's runtime root) go on running.
    const sandboxOf = (instanceId: string) => path.join(work, stale.id, "runtime", "instances", app, instanceId) + "/";
    stale.child.kill("SIGSTOP");
    try {
      await serving(app, label, 6, ["pool-a"]);
      for (const instance of staleInstances) expect(processRunning(sandboxOf(instance.instanceId))).toBe(true);
    } finally {
      stale.child.kill("SIGCONT");
    }
    await eventually(async () => (staleInstances.every((i) => !processRunning(sandboxOf(i.instanceId))) ? true : undefined), 60_000, "the stale instances' apps stopped");
    for (const instance of staleInstances) expect(await answer(instance.address!, instance.port!)).toBeUndefined();
    const listed = await instancesOf(app);
    expect(listed.map((i) => i.instanceId)).not.toEqual(expect.arrayContaining([staleInstances[0]!.instanceId]));
    expect(listed.filter((i) => i.host === stale.id)).toEqual([]);
    await eventually(async () => ((await hostsNow()).find((h) => h.id === stale.id)?.state === "ready" ? true : undefined), 30_000, "the host ready again");
  });

  it("drain moves every instance off the host, each serving elsewhere before the old one stops; undrain takes it back", async () => {
    const [from, to] = [hosts[0]!, hosts[1]!];
    let fewest = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const listed = await instancesOf(app).catch(() => undefined);
        if (Array.isArray(listed)) fewest = Math.min(fewest, listed.filter((i) => i.state === "running").length);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    expect((await api(`/hosts/${from.id}/drain`, { method: "POST" })).status).toBe(202);
    const running = await serving(app, label, 6, [to.id]);
    sampling = false;
    await sampler;
    expect(running).toHaveLength(6);
    expect(fewest).toBe(6);
    expect((await hostsNow()).find((h) => h.id === from.id)).toMatchObject({ state: "draining", instances: [] });
    expect((await api(`/hosts/${from.id}/undrain`, { method: "POST" })).status).toBe(202);
    expect((await hostsNow()).find((h) => h.id === from.id)?.state).toBe("ready");
    expect((await api("/hosts/nope/drain", { method: "POST" })).status).toBe(404);
  });

  it("scale to 0 stops every instance", async () => {
    const before = await instancesOf(app);
    expect(await scale(app, 0)).toMatchObject({ instances: 0, placed: 0 });
    await eventually(async () => ((await Promise.all(before.map((i) => answer(i.address!, i.port!)))).every((a) => a === undefined) ? true : undefined), 60_000, "every instance stopped");
    expect(await instancesOf(app)).toEqual([]);
  });
});
