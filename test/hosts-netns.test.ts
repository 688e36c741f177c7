import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostStatus, InstanceResponse } from "@slipway/shared";
import { labelApp } from "./harness/apps";
import { uniqueApp } from "./harness/env";
import { spawnHost, type SpawnedHost } from "./harness/hosts";
import { json } from "./harness/http";
import { eventually } from "./harness/local-stack";
import { createHostNetwork, leftoverHostNetworks, type HostNetwork, type NetnsHost } from "./harness/netns-hosts";
import { processRunning } from "./harness/stack";
import { stallingRelay } from "./harness/stalling-relay";
import { useStack } from "./harness/use-stack";

/**
 * Host agents on hosts of their own: each in a network namespace on a bridge, with its own
 * address; the control plane (Redis and S3 through relays on the bridge, the API, the worker) on
 * this machine's side of the bridge. A partition is iptables rules in a host's namespace.
 */
const HOST_DEAD_S = 3;
const { stack, work, deploy } = useStack("hosts-netns", { env: { HOST_DEAD_S: String(HOST_DEAD_S) } });
let network: HostNetwork;
const relays: { close(): Promise<void> }[] = [];
const agents = new Map<string, SpawnedHost>();

beforeAll(async () => {
  network = await createHostNetwork(["na", "nb", "nc"]);
  const redisRelay = await stallingRelay(new URL(stack.env.REDIS_URL!), network.gateway);
  const s3Relay = await stallingRelay(new URL(stack.env.S3_ENDPOINT!), network.gateway);
  relays.push(redisRelay, s3Relay);
  const redisUrl = new URL(stack.env.REDIS_URL!);
  redisUrl.hostname = network.gateway;
  redisUrl.port = new URL(redisRelay.endpoint).port;
  for (const host of network.hosts) {
    const env = { REDIS_URL: redisUrl.toString(), S3_ENDPOINT: s3Relay.endpoint, HOST_ADDRESS: host.address };
    agents.set(host.name, await spawnHost(stack, `netns-${host.name}`, work, env, 8, host.netns));
  }
});

afterAll(async () => {
  for (const agent of agents.values()) agent.child.kill("SIGTERM");
  await Promise.all([...agents.values()].map((agent) => agent.exited));
  for (const agent of agents.values()) await agent.removeNetworks();
  for (const relay of relays) await relay.close();
  await network?.destroy();
  expect(leftoverHostNetworks()).toEqual([]);
});

const api = (route: string, init?: RequestInit) => fetch(`${stack.baseUrl}/v1${route}`, init);
const instancesOf = async (app: string) => json<InstanceResponse[]>(await api(`/apps/${app}/instances`));
const answer = (i: InstanceResponse) => fetch(`http://${i.address}:${i.port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => undefined);
const hostOf = (name: string) => network.hosts.find((h) => h.name === name) as NetnsHost;

async function serving(app: string, label: string, count: number, onHosts?: string[]) {
  return eventually(
    async () => {
      const running = (await instancesOf(app)).filter((i) => i.state === "running" && i.release !== null);
      if (running.length !== count || (onHosts && running.some((i) => !onHosts.includes(i.host!)))) return undefined;
      return (await Promise.all(running.map(answer))).every((text) => text === label) ? running : undefined;
    },
    120_000,
    `${count} instances of ${app} serving ${label}`,
  );
}

describe("host agents on hosts in network namespaces", () => {
  const app = uniqueApp("netns");

  it("scale 0→6 places 2/2/2, each instance serving at its own host's address", async () => {
    await eventually(async () => ((await json<HostStatus[]>(await api("/hosts"))).filter((h) => h.id.startsWith("netns-") && h.state === "ready").length === 3 ? true : undefined), 60_000, "three ready hosts");
    expect((await api(`/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" })).status).toBe(201);
    await api(`/apps/${app}/scale`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ instances: 0 }) });
    const dir = path.join(work, "v1");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "app.py"), labelApp("netns-v1"));
    expect((await deploy(app, dir)).build.status).toBe("succeeded");
    await api(`/apps/${app}/scale`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ instances: 6 }) });
    const running = await serving(app, "netns-v1", 6);
    for (const name of ["na", "nb", "nc"]) {
      const on = running.filter((i) => i.host === `netns-${name}`);
      expect(on).toHaveLength(2);
      for (const instance of on) expect(instance.address).toBe(hostOf(name).address);
    }
  });

  it("a host partitioned during a rollout: the rollout completes on the others, no instance serves twice, and the host stops its stale instances when it comes back", async () => {
    const cut = hostOf("nc");
    const stale = (await instancesOf(app)).filter((i) => i.host === "netns-nc");
    expect(stale).toHaveLength(2);
    const dir = path.join(work, "v2");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "app.py"), labelApp("netns-v2"));
    await network.partition(cut);
    try {
      expect((await deploy(app, dir)).build.status).toBe("succeeded");
      const running = await serving(app, "netns-v2", 6, ["netns-na", "netns-nb"]);
      expect(new Set(running.map((i) => i.instanceId)).size).toBe(6);
      await eventually(async () => ((await json<{ state: string }[]>(await api(`/apps/${app}/releases`)))[0]!.state === "complete" ? true : undefined), 60_000, "the rollout complete");
      const hosts = await json<HostStatus[]>(await api("/hosts"));
      expect(hosts.find((h) => h.id === "netns-nc")).toMatchObject({ state: "lost", instances: [] });
      // Each instance is placed on one host only.
      const placed = hosts.flatMap((h) => h.instances.filter((i) => i.app === app).map((i) => i.instanceId));
      expect(placed.sort()).toEqual(running.map((i) => i.instanceId).sort());
      // The cut-off host's apps still run meanwhile (it cannot know yet)...
      for (const instance of stale) expect(processRunning(`${path.join(work, "netns-nc", "runtime", "instances", app, instance.instanceId)}/`)).toBe(true);
    } finally {
      await network.heal(cut);
    }
    // ...and stop once it hears from Redis again.
    await eventually(async () => (stale.every((i) => !processRunning(`${path.join(work, "netns-nc", "runtime", "instances", app, i.instanceId)}/`)) ? true : undefined), 60_000, "the stale instances stopped");
    await eventually(async () => ((await json<HostStatus[]>(await api("/hosts"))).find((h) => h.id === "netns-nc")?.state === "ready" ? true : undefined), 30_000, "the healed host ready");
    expect((await instancesOf(app)).filter((i) => i.host === "netns-nc")).toEqual([]);
  });
});
