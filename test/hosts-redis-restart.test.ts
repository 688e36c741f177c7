import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freePort, type InstanceResponse } from "@slipway/shared";
import { startRedisServer, type EmbeddedRedis } from "@slipway/shared/embedded";
import { heartbeatFile, heartbeatProblem } from "@slipway/shared/light";
import { labelApp } from "./harness/apps";
import { uniqueApp } from "./harness/env";
import { spawnHost, type SpawnedHost } from "./harness/hosts";
import { json } from "./harness/http";
import { eventually } from "./harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, type InProcessStack } from "./harness/stack";

// Redis of this file's own, persisted (AOF), so it can be restarted with its records.
let work: string;
let redis: EmbeddedRedis;
let stack: InProcessStack;
const hosts: SpawnedHost[] = [];
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-hosts-redis-"));
  redis = await startRedisServer({ dir: path.join(work, "redis"), port: await freePort() });
  stack = await startInProcessStack({ REDIS_URL: redis.url, HOST_DEAD_S: "3" });
});
afterAll(async () => {
  for (const host of hosts) host.child.kill("SIGTERM");
  await Promise.all(hosts.map((host) => host.exited));
  for (const host of hosts) await host.removeNetworks();
  await stack?.close();
  await redis?.stop();
  await rm(work, { recursive: true, force: true });
});

const instancesOf = async (app: string) => json<InstanceResponse[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/instances`));

it("Redis restarted in the middle of a scale change: the app converges to exactly the count asked for, and no host is declared lost for the outage", async () => {
  for (const id of ["rr-a", "rr-b"]) hosts.push(await spawnHost(stack, id, work, {}, 6));
  const app = uniqueApp("rr");
  const dir = path.join(work, "src");
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "app.py"), labelApp("rr-v1"));
  expect((await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id)).status).toBe("succeeded");
  await eventually(async () => ((await instancesOf(app)).filter((i) => i.state === "running").length === 1 ? true : undefined), 120_000, "the first instance running");
  const first = (await instancesOf(app))[0]!.instanceId;

  const scaled = await fetch(`${stack.baseUrl}/v1/apps/${app}/scale`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ instances: 5 }) });
  expect(scaled.status).toBe(200);
  // While the new instances restore and start, Redis goes away and comes back, longer than HOST_DEAD_S.
  await redis.stop();
  // Down until both hosts have been silent past HOST_DEAD_S: their heartbeat files say how long.
  await eventually(
    async () => {
      const ages = await Promise.all(hosts.map((host) => heartbeatProblem(heartbeatFile(path.join(work, host.id, "runtime")), Date.now(), "the host agent")));
      return ages.every((problem) => Number(/last heartbeat (\d+) s ago/.exec(problem ?? "")?.[1] ?? 0) >= 4) ? true : undefined;
    },
    30_000,
    "both hosts silent for 4 s",
  );
  redis = await startRedisServer({ dir: path.join(work, "redis"), port: Number(new URL(redis.url).port), password: redis.password });

  const running = await eventually(
    async () => {
      const listed = (await instancesOf(app)).filter((i) => i.state === "running");
      if (listed.length !== 5) return undefined;
      const answers = await Promise.all(listed.map((i) => fetch(`http://${i.address}:${i.port}/`).then((r) => r.text(), () => "")));
      return answers.every((text) => text === "rr-v1") ? listed : undefined;
    },
    120_000,
    "exactly five instances serving",
  );
  expect(new Set(running.map((i) => i.instanceId)).size).toBe(5);
  // The instance that served before the outage still does: its host was never declared lost.
  expect(running.map((i) => i.instanceId)).toContain(first);
  const placed = await stack.api.placements.hostsOf(app);
  expect(placed.size).toBe(5);
  expect((await json<{ state: string }[]>(await fetch(`${stack.baseUrl}/v1/hosts`))).map((h) => h.state)).toEqual(["ready", "ready"]);
  const onHosts = (await json<{ instances: { app: string }[] }[]>(await fetch(`${stack.baseUrl}/v1/hosts`))).flatMap((h) => h.instances).filter((i) => i.app === app);
  expect(onHosts).toHaveLength(5);
}, 300_000);
