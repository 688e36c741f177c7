/**
 * `npm start`: the whole of Slipway on one machine. Uses REDIS_URL and S3_* when set; otherwise
 * starts a redis-server child and an S3-compatible server with their data under .slipway/.
 * Then runs the API, one build worker and LOCAL_HOSTS host agents (1 unless set), each with its
 * share of INSTANCE_PORTS, restarts any of them that dies, and stops them all on Ctrl-C. Deployed
 * apps run on the host agents: DEFAULT_INSTANCES each (1 unless set), `slipway scale N` for more.
 * Where Caddy is installed it is the front door, fed by a router: every app at
 * `http://<app>.localhost:<FRONT_DOOR_HTTP_PORT>/` (8000 unless set). The services run compiled, as in production:
 * `npm start` builds first (prestart), and a missing build is an error here rather than a crash loop.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { APP_NAME_PATTERN } from "@slipway/shared/contracts";
import { ensureLocalToken } from "@slipway/shared";
import { redactUrl, startRedisServer, startS3Server, stopChild, type EmbeddedServer } from "@slipway/shared/embedded";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = path.resolve(process.env.SLIPWAY_DATA_DIR ?? path.join(root, ".slipway"));
const ENTRIES = { api: "services/api/dist/main.js", worker: "services/build-worker/dist/main.js", agent: "services/runtime-agent/dist/main.js", router: "services/router/dist/main.js" };
/** A service that dies is started again after 1 s, 2 s, 4 s ... up to this. */
const MAX_RESTART_DELAY_MS = 30_000;
/** A service that ran this long before dying was healthy: its next restart waits 1 s again. */
const STABLE_AFTER_MS = 60_000;

interface Service {
  name: string;
  /** A compiled entry node runs, or a whole command (Caddy). */
  entry: string | string[];
  env: Record<string, string>;
  child?: ChildProcess;
  startedAt: number;
  /** Deaths in a row, each soon after its start: sets the next restart's delay. */
  crashes: number;
  restartTimer?: NodeJS.Timeout;
}

function fail(message: string): never {
  console.error(`slipway: ${message}`);
  process.exit(1);
}

/** The ports instances get, split between the hosts in runs of neighbours. */
function portsPerHost(value: string, hosts: number): number[][] {
  const ports: number[] = [];
  for (const part of value.split(",").map((p) => p.trim())) {
    const range = /^(\d+)(?:-(\d+))?$/.exec(part);
    const from = Number(range?.[1]);
    const to = range?.[2] === undefined ? from : Number(range[2]);
    if (!range || from < 1 || to > 65535 || from > to) fail(`INSTANCE_PORTS must be a range like 8081-8099 or a list like 8081,8082, got "${value}"`);
    for (let port = from; port <= to; port++) ports.push(port);
  }
  if (ports.length < hosts) fail(`INSTANCE_PORTS has ${ports.length} port(s) for ${hosts} hosts: give each host at least one`);
  const share = Math.ceil(ports.length / hosts);
  return Array.from({ length: hosts }, (_, i) => ports.slice(i * share, (i + 1) * share)).filter((list) => list.length > 0);
}

async function main() {
  const apiPort = Number(process.env.API_PORT ?? 8080);
  if (!Number.isInteger(apiPort) || apiPort < 1 || apiPort > 65535) fail(`API_PORT must be a port number, got "${process.env.API_PORT}"`);
  const app = process.env.SLIPWAY_APP ?? "demo";
  if (!APP_NAME_PATTERN.test(app)) fail(`SLIPWAY_APP must be a valid app name, got "${app}"`);
  const hostCount = Number(process.env.LOCAL_HOSTS ?? 1);
  // Prometheus endpoints: the router's, then one per host agent.
  const routerMetricsPort = Number(process.env.ROUTER_METRICS_PORT || 9180);
  const hostMetricsPort = (index: number) => routerMetricsPort + 1 + index;
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > 16) fail(`LOCAL_HOSTS must be a number of host agents from 1 to 16, got "${process.env.LOCAL_HOSTS}"`);
  const hostPorts = portsPerHost(process.env.INSTANCE_PORTS ?? "8081-8099", hostCount);
  const frontDoorPort = Number(process.env.FRONT_DOOR_HTTP_PORT ?? 8000);
  if (!Number.isInteger(frontDoorPort) || frontDoorPort < 1 || frontDoorPort > 65535) fail(`FRONT_DOOR_HTTP_PORT must be a port number, got "${process.env.FRONT_DOOR_HTTP_PORT}"`);
  // CADDY_BIN names a Caddy of one's own (2.7 or later keeps WebSockets open across changes), else `caddy` on PATH.
  const caddyBin = process.env.CADDY_BIN || "caddy";
  const caddy = spawnSync(caddyBin, ["version"], { encoding: "utf8" }).status === 0;
  const unbuilt = Object.values(ENTRIES).filter((entry) => !existsSync(path.join(root, entry)));
  if (unbuilt.length > 0) fail(`${unbuilt.join(", ")} not built: run \`npm run build\` first`);

  const embedded: EmbeddedServer[] = [];
  const env: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  if (!env.REDIS_URL) {
    const redis = await startRedisServer({ dir: path.join(dataDir, "redis") }).catch((error: Error) => fail(error.message));
    embedded.push(redis);
    env.REDIS_URL = redis.url;
  }
  if (!env.S3_ENDPOINT) {
    const s3 = await startS3Server({ dir: path.join(dataDir, "s3") }).catch((error: Error) => fail(`could not start the embedded S3 server: ${error.message}`));
    embedded.push(s3);
    Object.assign(env, { S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey });
  }
  env.API_PORT = String(apiPort);
  // The API shows apps' URLs from these; the router serves them.
  env.SLIPWAY_DOMAIN ??= "localhost";
  env.FRONT_DOOR_HTTP_PORT = String(frontDoorPort);
  env.API_HOST ??= "127.0.0.1";
  // The API gets a token unless one is given or API_INSECURE=1 says to run it open; only the API needs it.
  const apiEnv: Record<string, string> = { GIT_ROOT: env.GIT_ROOT ?? path.join(dataDir, "git") };
  let tokenLine: string | undefined;
  if (!env.API_TOKEN && env.API_INSECURE !== "1") {
    const local = await ensureLocalToken(dataDir).catch((error: Error) => fail(`could not keep an API token in ${dataDir}: ${error.message}`));
    apiEnv.API_TOKEN = local.token;
    tokenLine = local.created
      ? `  API token    ${local.token}  (new, shown this once: kept in ${local.file}, where the CLI on this machine finds it)`
      : `  API token    in ${local.file}  (the CLI on this machine finds it there)`;
  }

  const services: Service[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("slipway: stopping ...");
    for (const service of services) clearTimeout(service.restartTimer);
    await Promise.all(services.map(({ child }) => child && stopChild(child, 15_000)));
    await Promise.all(embedded.map((server) => server.stop()));
    console.log("slipway: stopped");
    process.exit(code);
  };

  const start = (service: Service) => {
    const [command, ...args] = typeof service.entry === "string" ? [process.execPath, path.join(root, service.entry)] : service.entry;
    const child = spawn(command!, args, {
      cwd: root,
      env: { ...env, ...service.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => console.log(`[${service.name}] ${line}`));
    }
    service.child = child;
    service.startedAt = Date.now();
    // One dead service must not take the stack down: the others keep running while it comes back.
    child.on("exit", (code, signal) => {
      service.child = undefined;
      if (stopping) return;
      if (Date.now() - service.startedAt >= STABLE_AFTER_MS) service.crashes = 0;
      const delay = Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** service.crashes);
      service.crashes += 1;
      console.error(`slipway: ${service.name} exited (${signal ?? `code ${code}`}); restarting it in ${delay / 1000} s`);
      service.restartTimer = setTimeout(() => {
        if (stopping) return;
        start(service);
        console.error(`slipway: ${service.name} restarted (pid ${service.child?.pid})`);
      }, delay);
    });
  };

  const run = (name: string, entry: Service["entry"], extraEnv: Record<string, string> = {}) => {
    const service: Service = { name, entry, env: extraEnv, startedAt: 0, crashes: 0 };
    services.push(service);
    start(service);
  };

  // Apps' git repositories next to the embedded stores: /var/lib is not a developer's to write.
  run("api", ENTRIES.api, apiEnv);
  run("build-worker", ENTRIES.worker);
  // Hosts side by side on this machine: each with its own id, ports, runtime root and host cache.
  for (const [index, ports] of hostPorts.entries()) {
    const hostId = `local-${index + 1}`;
    const hostDir = path.join(dataDir, "hosts", hostId);
    await mkdir(hostDir, { recursive: true });
    run(`host ${hostId}`, ENTRIES.agent, {
      HOST_ID: hostId,
      HOST_ADDRESS: "127.0.0.1",
      INSTANCE_PORTS: ports.join(","),
      RUNTIME_ROOT: path.join(hostDir, "runtime"),
      HOST_CACHE_DIR: path.join(hostDir, "host-cache"),
      // One machine: every host agent claims its instances' uids (and with them their networks) in one place.
      SANDBOX_UID_DIR: path.join(dataDir, "sandbox-uids"),
      HOST_METRICS_PORT: String(hostMetricsPort(index)),
    });
  }

  // The front door: Caddy with its admin API on a socket only this user reaches, its certificates
  // under the data directory, and a router that gives it every app's routes from Redis.
  if (caddy) {
    const caddyDir = path.join(dataDir, "caddy");
    await mkdir(caddyDir, { recursive: true, mode: 0o700 });
    const socket = path.join(caddyDir, "admin.sock");
    await rm(socket, { force: true });
    const bootstrap = path.join(caddyDir, "bootstrap.json");
    await writeFile(bootstrap, JSON.stringify({ admin: { listen: `unix/${socket}`, config: { persist: false } }, storage: { module: "file_system", root: path.join(caddyDir, "data") } }));
    run("caddy", [caddyBin, "run", "--config", bootstrap], { HOME: caddyDir, XDG_CONFIG_HOME: path.join(caddyDir, "config"), XDG_DATA_HOME: path.join(caddyDir, "data") });
    run("router", ENTRIES.router, { CADDY_ADMIN: `unix/${socket}`, ROUTER_ID: "local", ROUTER_METRICS_PORT: String(routerMetricsPort) });
  }

  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));

  const apiUrl = `http://${env.API_HOST === "0.0.0.0" ? "127.0.0.1" : env.API_HOST}:${apiPort}`;
  console.log(
    [
      "",
      "Slipway is starting:",
      `  API          ${apiUrl}  (GET /healthz)`,
      ...(tokenLine ? [tokenLine] : env.API_TOKEN ? [] : ["  API token    none (API_INSECURE=1): anything on this machine may use the API"]),
      `  Redis        ${redactUrl(env.REDIS_URL)}${embedded.length && !process.env.REDIS_URL ? "  (embedded)" : ""}`,
      `  S3           ${env.S3_ENDPOINT}${!process.env.S3_ENDPOINT ? "  (embedded, data in " + path.join(dataDir, "s3") + ")" : ""}`,
      caddy
        ? `  front door   http://${app}.${env.SLIPWAY_DOMAIN}:${frontDoorPort}/  (every app at http://<app>.${env.SLIPWAY_DOMAIN}:${frontDoorPort}/)`
        : "  front door   none: Caddy is not installed (apt-get install caddy); apps answer on their instances' ports",
      ...hostPorts.map((ports, i) => `  host local-${i + 1}  instances on http://127.0.0.1:${ports[0]}${ports.length > 1 ? `-${ports.at(-1)}` : ""}  (slipway instances shows which)`),
      `  metrics      ${apiUrl}/metrics${caddy ? `, front door :${routerMetricsPort}/metrics` : ""}, hosts :${hostMetricsPort(0)}${hostPorts.length > 1 ? `-${hostMetricsPort(hostPorts.length - 1)}` : ""}/metrics`,
      "",
      `Deploy: tar -czf - -C examples/python-hello . | curl -sS -X POST -H 'Content-Type: application/gzip'${apiEnv.API_TOKEN ? ` -H "Authorization: Bearer $(cat ${path.join(dataDir, "api-token")})"` : env.API_TOKEN ? ' -H "Authorization: Bearer $API_TOKEN"' : ""} --data-binary @- ${apiUrl}/v1/apps/${app}/builds`,
      "Stop with Ctrl-C.",
      "",
    ].join("\n"),
  );
}

main().catch((error) => fail((error as Error).message));
