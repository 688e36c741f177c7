/**
 * bench/front-door: the cost of Caddy before an instance, and how fast the router moves traffic.
 * - overhead: autocannon against an instance's port straight, then through Caddy by Host header
 *   (the instance is the runtime agent's own proxy before a small node app), interleaved runs,
 *   latency p50/p99 and requests per second of each;
 * - switch: a new instance reported serving (what the agent writes when its health check passed)
 *   until Caddy sends it requests, through the real router and Redis; 20 times;
 * - configuration: a whole configuration of 200 apps × 2 instances built and loaded into Caddy.
 * Writes bench/results/front-door.json.
 *
 *   npm run bench:front-door   (needs Caddy: apt-get install caddy)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import autocannon from "autocannon";
import { AppRepository, createLogger, InstanceRepository, recordKeys, type InstanceReport } from "@slipway/shared";
import { startRedisServer, stopChild } from "@slipway/shared/embedded";
import { InstanceProxy } from "../services/runtime-agent/src/proxy";
import { CaddyAdmin, caddyConfig, startRouter, type AppRoute } from "../services/router/src/index";
import { benchDir, machine, median, runBench, writeResult } from "./lib";

const CONNECTIONS = 10;
const caddyBin = process.env.CADDY_BIN || "caddy";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = 3;
const SWITCHES = 20;

async function main() {
  const work = await benchDir("front-door");
  const caddy = await startCaddy(work);
  const redis = await startRedisServer();
  const app = await startApp("bench");
  const proxy = new InstanceProxy();
  const instancePort = await proxy.listen(0, "127.0.0.1");
  proxy.setUpstream(app.port);
  try {
    const admin = new CaddyAdmin(`unix/${caddy.socket}`);
    const preserved = { admin: { listen: `unix/${caddy.socket}`, config: { persist: false } } };
    await admin.load(caddyConfig([{ app: "bench", hosts: ["bench.localhost"], upstreams: [`127.0.0.1:${instancePort}`], affinity: false }], { httpPort: caddy.httpPort, preserved, generation: "bench" }));

    const direct: Run[] = [];
    const viaCaddy: Run[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await load(`http://127.0.0.1:${instancePort}/`, {}));
      viaCaddy.push(await load(`http://127.0.0.1:${caddy.httpPort}/`, { Host: "bench.localhost" }));
      console.log(`round ${round + 1}: direct ${JSON.stringify(direct.at(-1))}, through Caddy ${JSON.stringify(viaCaddy.at(-1))}`);
    }
    const overhead = {
      direct: summarise(direct),
      throughCaddy: summarise(viaCaddy),
    };
    const added = { p50Ms: round2(overhead.throughCaddy.p50Ms - overhead.direct.p50Ms), throughputShare: round2(overhead.throughCaddy.requestsPerSecond / overhead.direct.requestsPerSecond) };
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
      connections: CONNECTIONS,
      secondsPerRun: SECONDS,
      rounds: ROUNDS,
      overhead: { ...overhead, added, goal: { addedP50Ms: 1, throughputShare: 0.8 } },
      healthPassToTrafficMs: { p50: median(switchMs), max: Math.max(...switchMs), samples: switchMs },
      configLoad200AppsMs: { p50: median(loadMs), max: Math.max(...loadMs) },
    });
  } finally {
    await proxy.close(0);
    app.close();
    await redis.stop();
    await stopChild(caddy.child);
  }
}

interface Run {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  errors: number;
}

async function load(url: string, headers: Record<string, string>): Promise<Run> {
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: SECONDS });
  return { p50Ms: result.latency.p50, p99Ms: result.latency.p99, requestsPerSecond: Math.round(result.requests.average), errors: result.errors + result.non2xx };
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

function ask(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: "127.0.0.1", port, headers: { Host: host }, agent: false }, (answer) => {
      let body = "";
      answer.on("data", (chunk: Buffer) => (body += chunk.toString()));
      answer.on("end", () => resolve(body));
    });
    request.on("error", reject);
    request.end();
  });
}

async function startApp(label: string): Promise<{ port: number; close(): void }> {
  const server = http.createServer((_req, res) => res.end(label));
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

interface Caddy {
  child: ChildProcess;
  socket: string;
  httpPort: number;
  version: string;
}

async function startCaddy(work: string): Promise<Caddy> {
  const dir = path.join(work, "caddy");
  await mkdir(dir, { recursive: true });
  const socket = path.join(dir, "admin.sock");
  const httpPort = await new Promise<number>((resolve) => {
    const probe = http.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const bootstrap = path.join(dir, "bootstrap.json");
  await writeFile(bootstrap, JSON.stringify({ admin: { listen: `unix/${socket}`, config: { persist: false } }, storage: { module: "file_system", root: path.join(dir, "data") } }));
  const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, "config"), XDG_DATA_HOME: path.join(dir, "data") };
  const child = spawn(caddyBin, ["run", "--config", bootstrap], { env, stdio: "ignore" });
  const version = await new Promise<string>((resolve) => {
    const probe = spawn(caddyBin, ["version"], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    probe.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    probe.on("exit", () => resolve(out.trim()));
    probe.on("error", () => resolve("unknown"));
  });
  const admin = new CaddyAdmin(`unix/${socket}`);
  await until(async () => (await admin.config().then(() => true)) === true);
  return { child, socket, httpPort, version };
}

const round2 = (value: number) => Math.round(value * 100) / 100;

runBench("front-door", main);
