/**
 * bench/front-door: the cost of Caddy before an instance, and how fast the router moves traffic.
 * - overhead: an instance's port asked straight, then through Caddy by Host header (the instance
 *   is the runtime agent's own proxy before a small node app, in a process of its own), in
 *   interleaved rounds after a warm-up: latency p50/p99 of requests one at a time on a kept-alive
 *   connection (the hop's own cost, timed to the microsecond), and requests per second under
 *   autocannon's load;
 * - switch: a new instance reported serving (what the agent writes when its health check passed)
 *   until Caddy sends it requests, through the real router and Redis; 20 times;
 * - configuration: a whole configuration of 200 apps × 2 instances built and loaded into Caddy.
 * Writes bench/results/front-door.json.
 *
 *   npm run bench:front-door   (needs Caddy: apt-get install caddy)
 */
import { fork } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import autocannon from "autocannon";
import { AppRepository, createLogger, InstanceRepository, recordKeys, type InstanceReport } from "@slipway/shared";
import { startRedisServer } from "@slipway/shared/embedded";
import { CaddyAdmin, caddyConfig, startRouter, type AppRoute } from "../services/router/src/index";
import { startCaddy, viaFrontDoor, type Caddy } from "../test/harness/front-door";
import { benchDir, machine, median, runBench, writeResult } from "./lib";

const CONNECTIONS = 10;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const SEQUENTIAL_REQUESTS = 2000;
const ROUNDS = 3;
const SWITCHES = 20;

async function main() {
  const work = await benchDir("front-door");
  const caddy = await startCaddy(path.join(work, "caddy"));
  const redis = await startRedisServer();
  const instance = fork(new URL("./front-door-instance.ts", import.meta.url).pathname, { stdio: "inherit" });
  const instancePort = await new Promise<number>((resolve, reject) => {
    instance.once("message", (message) => resolve((message as { port: number }).port));
    instance.once("exit", (code) => reject(new Error(`the bench's instance exited (${code})`)));
  });
  try {
    const admin = new CaddyAdmin(`unix/${caddy.socket}`);
    const preserved = { admin: { listen: `unix/${caddy.socket}`, config: { persist: false } } };
    await admin.load(caddyConfig([{ app: "bench", hosts: ["bench.localhost"], upstreams: [`127.0.0.1:${instancePort}`], affinity: false }], { httpPort: caddy.httpPort, preserved, generation: "bench" }));

    const direct: Run[] = [];
    const viaCaddy: Run[] = [];
    const directTarget = { port: instancePort, headers: {} };
    const caddyTarget = { port: caddy.httpPort, headers: { Host: "bench.localhost" } };
    // Warm-up, not counted: the instance's JIT and Caddy's pool of upstream connections.
    for (const target of [directTarget, caddyTarget]) await autocannon({ url: `http://127.0.0.1:${target.port}/`, headers: target.headers, connections: CONNECTIONS, duration: 3 });
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await measure(directTarget));
      viaCaddy.push(await measure(caddyTarget));
      console.log(`round ${round + 1}: direct ${JSON.stringify(direct.at(-1))}, through Caddy ${JSON.stringify(viaCaddy.at(-1))}`);
    }
    const overhead = {
      direct: summarise(direct),
      throughCaddy: summarise(viaCaddy),
    };
    const added = { p50Ms: round3(overhead.throughCaddy.p50Ms - overhead.direct.p50Ms), throughputShare: round2(overhead.throughCaddy.requestsPerSecond / overhead.direct.requestsPerSecond) };
    console.log(`overhead: +${added.p50Ms} ms at p50, ${Math.round(added.throughputShare * 100)} % of the direct throughput`);

    const switchMs = await switchTimes(redis.url, caddy, work);
    console.log(`switch: p50 ${median(switchMs)} ms, max ${Math.max(...switchMs)} ms`);

    const loadMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const routes: AppRoute[] = Array.from({ length: 200 }, (_, a) => ({ app: `app${a}`, hosts: [`app${a}.localhost`], upstreams: [`10.1.${a % 250}.1:${20000 + i}`, `10.1.${a % 250}.2:${20000 + i}`], affinity: false }));
      const start = performance.now();
      await admin.load(caddyConfig(routes, { httpPort: caddy.httpPort, preserved, generation: `bench-${i}` }));
      loadMs.push(round2(performance.now() - start));
    }
    console.log(`configuration of 200 apps × 2 instances: p50 ${median(loadMs)} ms`);

    await writeResult("front-door", {
      benchmark: "front-door",
      date: new Date().toISOString(),
      machine: machine(),
      caddy: caddy.version,
      latency: `${SEQUENTIAL_REQUESTS} requests one at a time on a kept-alive connection per round`,
      throughput: `autocannon, ${CONNECTIONS} connections, ${SECONDS} s per round`,
      rounds: ROUNDS,
      overhead: { ...overhead, added, goal: { addedP50Ms: 1, throughputShare: 0.8 } },
      healthPassToTrafficMs: { p50: median(switchMs), max: Math.max(...switchMs), samples: switchMs },
      configLoad200AppsMs: { p50: median(loadMs), max: Math.max(...loadMs) },
    });
  } finally {
    instance.kill();
    await redis.stop();
    await caddy.stop();
  }
}

interface Run {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  errors: number;
}

interface Target {
  port: number;
  headers: Record<string, string>;
}

async function measure(target: Target): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  let errors = 0;
  try {
    for (let i = 0; i < SEQUENTIAL_REQUESTS; i++) {
      const start = performance.now();
      const status = await get(target, agent);
      latencies.push(performance.now() - start);
      if (status !== 200) errors += 1;
    }
  } finally {
    agent.destroy();
  }
  latencies.sort((a, b) => a - b);
  const result = await autocannon({ url: `http://127.0.0.1:${target.port}/`, headers: target.headers, connections: CONNECTIONS, duration: SECONDS });
  return {
    p50Ms: round3(latencies[Math.floor(latencies.length * 0.5)]!),
    p99Ms: round3(latencies[Math.floor(latencies.length * 0.99)]!),
    requestsPerSecond: Math.round(result.requests.average),
    errors: errors + result.errors + result.non2xx,
  };
}

function get(target: Target, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: "127.0.0.1", port: target.port, headers: target.headers, agent }, (answer) => {
      answer.resume();
      answer.on("end", () => resolve(answer.statusCode ?? 0));
    });
    request.on("error", reject);
  });
}

function summarise(runs: Run[]) {
  return {
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

/**
 * An app with instance i1 serving; i2 (another server) is reported serving and announced, as the
 * agent does when its health check passes; the time until Caddy answers from i2. Then i2 leaves.
 */
async function switchTimes(redisUrl: string, caddy: Caddy, work: string): Promise<number[]> {
  const keys = recordKeys("bench-door");
  const { connectRedis } = await import("@slipway/shared");
  const redis = connectRedis(redisUrl);
  const [one, two] = [await startApp("one"), await startApp("two")];
  const router = await startRouter(
    {
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: "bench-door",
      LOG_LEVEL: "warn",
      SLIPWAY_DOMAIN: "localhost",
      FRONT_DOOR_HTTP_PORT: caddy.httpPort,
      FRONT_DOOR_HTTPS_PORT: undefined,
      CADDY_ADMIN: `unix/${caddy.socket}`,
      ROUTER_ID: "bench",
      TLS_EMAIL: undefined,
      ROUTER_RESYNC_S: 60,
      ROUTER_HEARTBEAT_FILE: path.join(work, "router.heartbeat"),
      ROUTER_METRICS_PORT: 0,
    },
    createLogger("bench", "warn"),
  );
  const instances = new InstanceRepository(redis, keys);
  await new AppRepository(redis, keys).upsert("switch", {});
  const report = (instanceId: string, port: number): InstanceReport => ({
    instanceId,
    release: 1,
    buildId: "bench-build",
    state: "running",
    servingRelease: 1,
    appPath: "/bench",
    lastHeartbeatAt: new Date().toISOString(),
    host: "bench-host",
    address: "127.0.0.1",
    port,
  });
  const place = (instanceId: string) => redis.hset(keys.placements("switch"), instanceId, JSON.stringify({ host: "bench-host", epoch: 1 }));
  await place("i1");
  await instances.report("switch", report("i1", one.port));
  await instances.announce("switch");
  await until(async () => (await ask(caddy.httpPort, "switch.localhost")) === "one");
  const samples: number[] = [];
  try {
    for (let i = 0; i < SWITCHES; i++) {
      await place("i2");
      const start = performance.now();
      await instances.report("switch", report("i2", two.port));
      await instances.announce("switch");
      await until(async () => (await ask(caddy.httpPort, "switch.localhost")) === "two");
      samples.push(round2(performance.now() - start));
      await redis.hdel(keys.placements("switch"), "i2");
      await instances.announce("switch");
      await until(async () => {
        for (let k = 0; k < 4; k++) if ((await ask(caddy.httpPort, "switch.localhost")) !== "one") return false;
        return true;
      });
    }
  } finally {
    await router.close();
    one.close();
    two.close();
    redis.disconnect();
  }
  return samples;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function ask(port: number, host: string): Promise<string> {
  return (await viaFrontDoor(port, host)).body;
}

async function startApp(label: string): Promise<{ port: number; close(): void }> {
  const server = http.createServer((_req, res) => res.end(label));
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

const round2 = (value: number) => Math.round(value * 100) / 100;
const round3 = (value: number) => Math.round(value * 1000) / 1000;

runBench("front-door", main);
