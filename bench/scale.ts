/**
 * bench/scale: apps on a pool of host agents (real processes, sandboxes and instance networks).
 * - scale 1→8 on 3 hosts until all 8 serve: cold (two hosts have never extracted the release)
 *   and warm (every host cache holds it);
 * - failover: the host with the most instances SIGKILLed, until all 8 serve on the other two
 *   (HOST_DEAD_S, default 15, is most of it);
 * - placement cost: 200 apps on 20 hosts (records only), 1,000 scale changes as the API makes
 *   them: each decision's latency and the Redis commands it costs.
 * Writes bench/results/scale.json.
 *
 *   npm run bench:scale   (builds first: host agents run compiled; BENCH_HOST_DEAD_S overrides 15)
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { AppRepository, PlacementLoop, PlacementRepository, recordKeys, type InstanceResponse } from "@slipway/shared";
import { stopChild } from "@slipway/shared/embedded";
import { spawnHost, type SpawnedHost } from "../test/harness/hosts";
import { buildAll } from "../scripts/build";
import { startBenchStack, type BenchStack } from "./stack";
import { benchDir, machine, runBench, since, writeResult } from "./lib";

const HOST_DEAD_S = Number(process.env.BENCH_HOST_DEAD_S ?? 15);
const APP_PY = `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"scaled")
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

async function main() {
  await buildAll();
  const work = await benchDir("scale");
  const stack = await startBenchStack(work, { HOST_DEAD_S: String(HOST_DEAD_S) });
  const hosts = new Map<string, SpawnedHost>();
  try {
    const placement = await placementCost(stack);
    console.log(`placement: p50 ${placement.decisionMs.p50} ms, p99 ${placement.decisionMs.p99} ms, ${placement.redisCommandsPerChange} Redis commands per change`);

    for (const id of ["scale-a", "scale-b", "scale-c"]) hosts.set(id, await startHost(stack, work, id));
    const app = "bench-scale";
    await fetch(`${stack.base}/v1/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{}" });
    await scale(stack, app, 1);
    const src = path.join(work, "src");
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), APP_PY);
    const { packDirectory } = await import("@slipway/shared");
    const { readFile } = await import("node:fs/promises");
    const body = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);
    const build = (await (await fetch(`${stack.base}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body })).json()) as { id: string };
    await until(async () => ((await (await fetch(`${stack.base}/v1/builds/${build.id}`)).json()) as { status: string }).status === "succeeded", 300_000, "the build");
    await serving(stack, app, 1);

    const coldStart = process.hrtime.bigint();
    await scale(stack, app, 8);
    await serving(stack, app, 8);
    const coldS = since(coldStart);
    console.log(`scale 1→8, cold: ${coldS.toFixed(2)} s`);

    await scale(stack, app, 1);
    await until(async () => (await instances(stack, app)).length === 1, 60_000, "scaled back to 1");
    const warmStart = process.hrtime.bigint();
    await scale(stack, app, 8);
    await serving(stack, app, 8);
    const warmS = since(warmStart);
    console.log(`scale 1→8, warm: ${warmS.toFixed(2)} s`);

    const byHost = new Map<string, number>();
    for (const instance of await instances(stack, app)) byHost.set(instance.host!, (byHost.get(instance.host!) ?? 0) + 1);
    const [victim] = [...byHost].sort((a, b) => b[1] - a[1])[0]!;
    const failoverStart = process.hrtime.bigint();
    hosts.get(victim)!.child.kill("SIGKILL");
    await serving(stack, app, 8, (i) => i.host !== victim);
    const failoverS = since(failoverStart);
    console.log(`failover after SIGKILL of ${victim}: ${failoverS.toFixed(2)} s (HOST_DEAD_S ${HOST_DEAD_S})`);

    await writeResult("scale", {
      machine: machine(),
      hosts: 3,
      hostDeadS: HOST_DEAD_S,
      scale1to8: { coldS: round(coldS), warmS: round(warmS), goals: { warmS: 3, coldS: 6 } },
      failover: { seconds: round(failoverS), goalS: HOST_DEAD_S + 2 },
      placement,
    });
  } finally {
    for (const host of hosts.values()) {
      await stopChild(host.child, 30_000);
      await host.removeNetworks();
    }
    await stack.close();
  }
}

/** 200 apps on 20 hosts, then 1,000 scale changes through the API's placement path, timed one by one. */
async function placementCost(stack: BenchStack) {
  const redis = stack.api.redis;
  const keys = recordKeys(`bench-place-${process.pid}`);
  const placements = new PlacementRepository(redis, keys);
  const apps = new AppRepository(redis, keys);
  const loop = new PlacementLoop(placements, redis, { HOST_DEAD_S, DEFAULT_INSTANCES: 1 }, stack.api.logger);
  for (let h = 0; h < 20; h++) await placements.beat({ id: `sim-${h}`, address: `10.9.0.${h}`, capacity: 100, memoryMb: 65_536, labels: {}, startedAt: new Date().toISOString() });
  const names = Array.from({ length: 200 }, (_, i) => `sim-app-${i}`);
  for (const name of names) {
    await apps.upsert(name);
    await loop.place(name, { desired: 2 });
  }
  const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.info("stats"))![1]);
  const before = await commands();
  const times: number[] = [];
  let seed = 7;
  const random = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31), seed % n);
  for (let i = 0; i < 1000; i++) {
    const start = process.hrtime.bigint();
    await loop.place(names[random(names.length)]!, { desired: random(9) });
    times.push(since(start) * 1000);
  }
  // Each INFO asking the count is one command more.
  const perChange = (await commands()) - before - 1;
  times.sort((a, b) => a - b);
  const at = (q: number) => round(times[Math.min(times.length - 1, Math.floor(q * times.length))]!);
  return {
    apps: 200,
    simulatedHosts: 20,
    changes: 1000,
    decisionMs: { p50: at(0.5), p99: at(0.99), max: round(times.at(-1)!), goalP99: 50 },
    redisCommandsPerChange: round(perChange / 1000),
    redisRoundTripsPerChange: 2,
    note: "a change is one Lua script (EVAL) plus one INFO (may hosts be declared lost): two round trips; the commands count what the script runs inside Redis too",
  };
}

async function startHost(stack: BenchStack, work: string, id: string): Promise<SpawnedHost> {
  const host = await spawnHost(stack, id, work, {}, 8);
  await until(async () => ((await (await fetch(`${stack.base}/v1/hosts`)).json()) as { id: string; state: string }[]).some((h) => h.id === id && h.state === "ready"), 60_000, `host ${id} ready`);
  return host;
}

async function scale(stack: BenchStack, app: string, instances: number): Promise<void> {
  const response = await fetch(`${stack.base}/v1/apps/${app}/scale`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ instances }) });
  if (!response.ok) throw new Error(`scale answered ${response.status}: ${await response.text()}`);
}

const instances = async (stack: BenchStack, app: string) => (await (await fetch(`${stack.base}/v1/apps/${app}/instances`)).json()) as InstanceResponse[];

/** Until exactly `count` instances report running (those `where` accepts) and each answers on its address and port. */
async function serving(stack: BenchStack, app: string, count: number, where: (i: InstanceResponse) => boolean = () => true): Promise<void> {
  await until(
    async () => {
      const running = (await instances(stack, app)).filter((i) => i.state === "running" && where(i));
      if (running.length !== count) return false;
      const answers = await Promise.all(running.map((i) => fetch(`http://${i.address}:${i.port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)));
      return answers.every(Boolean);
    },
    120_000,
    `${count} instances serving`,
    20,
  );
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string, pauseMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
}

const round = (value: number) => Math.round(value * 100) / 100;

runBench("scale", main);
