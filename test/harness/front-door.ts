import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { freePort } from "@slipway/shared";
import { compiledEntry } from "./entries";
import type { InProcessStack } from "./stack";

export interface FrontDoor {
  httpPort: number;
  httpsPort: number;
  /** The internal CA's root certificate (where Caddy keeps it once it issued one). */
  rootCertificate: string;
  caddy: ChildProcess;
  routers: SpawnedRouter[];
  /** Where the first router serves `GET /metrics`. */
  metricsPort: number;
  /** Another router for the same Caddy (several may run), with its own settings. */
  addRouter(id: string, env?: Record<string, string>): SpawnedRouter;
  /** Starts Caddy again after it was killed: a bare configuration the routers fill in again. */
  restartCaddy(): Promise<void>;
  close(): Promise<void>;
}

export interface SpawnedRouter {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
}

/** The Caddy the tests run: CADDY_BIN (what .ci/run builds: 2.7 or later keeps WebSockets across loads), else `caddy` on PATH. */
export const caddyBin = process.env.CADDY_BIN || "caddy";

/**
 * A real Caddy with its admin API on a unix socket, storage and certificates
 * in `work`, and a router process (the compiled services/router) feeding it from the stack's
 * Redis. Apps answer at `<app>.localhost` on its HTTP and HTTPS ports.
 */
export async function startFrontDoor(stack: Pick<InProcessStack, "env">, work: string, env: Record<string, string> = {}): Promise<FrontDoor> {
  const caddy = await startCaddy(path.join(work, "caddy"));
  const routers: SpawnedRouter[] = [];
  const addRouter = (id: string, routerEnv: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [compiledEntry("router")], {
      env: {
        ...(process.env as Record<string, string>),
        ...stack.env,
        ROUTER_ID: id,
        CADDY_ADMIN: `unix/${caddy.socket}`,
        SLIPWAY_DOMAIN: "localhost",
        FRONT_DOOR_HTTP_PORT: String(caddy.httpPort),
        FRONT_DOOR_HTTPS_PORT: String(caddy.httpsPort),
        ROUTER_RESYNC_S: "2",
        ROUTER_METRICS_PORT: "0",
        ...env,
        ...routerEnv,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const router = { child, exited: new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code))), output: () => output };
    routers.push(router);
    return router;
  };
  const metricsPort = await freePort();
  addRouter("router-1", { ROUTER_METRICS_PORT: String(metricsPort) });
  return {
    metricsPort,
    httpPort: caddy.httpPort,
    httpsPort: caddy.httpsPort,
    rootCertificate: caddy.rootCertificate,
    get caddy() {
      return caddy.child;
    },
    routers,
    addRouter,
    restartCaddy: () => caddy.restart(),
    close: async () => {
      for (const router of routers) router.child.kill("SIGTERM");
      await Promise.all(routers.map((router) => router.exited));
      await caddy.stop();
    },
  };
}

export interface Caddy {
  readonly child: ChildProcess;
  /** Its admin API's unix socket. */
  socket: string;
  httpPort: number;
  httpsPort: number;
  /** The internal CA's root certificate (where Caddy keeps it once it issued one). */
  rootCertificate: string;
  /** Its module version (`v2.11.9`), else `caddy version`'s first line. */
  version: string;
  /** Starts it again after it was killed, bare. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A real Caddy (CADDY_BIN, else `caddy` on PATH) started bare: its admin API on a unix socket in
 * `dir`, storage and certificates there too, and two free ports chosen for whoever configures it.
 */
export async function startCaddy(dir: string): Promise<Caddy> {
  await mkdir(dir, { recursive: true });
  const socket = path.join(dir, "admin.sock");
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const bootstrap = path.join(dir, "bootstrap.json");
  await writeFile(bootstrap, JSON.stringify({ admin: { listen: `unix/${socket}`, config: { persist: false } }, storage: { module: "file_system", root: path.join(dir, "data") } }));
  const caddyEnv = { ...(process.env as Record<string, string>), HOME: dir, XDG_CONFIG_HOME: path.join(dir, "config"), XDG_DATA_HOME: path.join(dir, "data") };
  let log = "";
  const launch = async () => {
    const child = spawn(caddyBin, ["run", "--config", bootstrap], { env: caddyEnv, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-20_000)));
    await adminReady(socket, () => log);
    return child;
  };
  let child = await launch();
  // A build from the module proxy says "unknown" to `caddy version`; its build info names the module's version.
  const module = /^mod\s+github\.com\/caddyserver\/caddy\/v2\s+(\S+)/m.exec(spawnSync(caddyBin, ["build-info"], { encoding: "utf8" }).stdout ?? "");
  const version = module?.[1] ?? (spawnSync(caddyBin, ["version"], { encoding: "utf8" }).stdout?.split("\n")[0]?.trim() || "unknown");
  return {
    get child() {
      return child;
    },
    socket,
    httpPort,
    httpsPort,
    rootCertificate: path.join(dir, "data", "pki", "authorities", "local", "root.crt"),
    version,
    restart: async () => {
      child = await launch();
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Waits until Caddy's admin socket answers. */
async function adminReady(socket: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const request = http.request({ socketPath: socket, path: "/config/", setHost: false, headers: { Host: "" } }, (answer) => {
        answer.resume();
        resolve(answer.statusCode === 200);
      });
      request.on("error", () => resolve(false));
      request.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`Caddy's admin socket did not answer within 30 s: ${log().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A request to the front door as a client of `host` would send it: Host header set, connection to loopback. */
export function viaFrontDoor(port: number, host: string, urlPath = "/", headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    // A connection per request: a kept-alive one that the front door closes as idle when it loads
    // a new configuration races the next request on it (as with any HTTP/1.1 proxy's reload),
    // which browsers retry and a plain node client does not.
    const request = http.request({ host: "127.0.0.1", port, path: urlPath, headers: { Host: host, ...headers }, agent: false, timeout: 15_000 }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (chunk: Buffer) => chunks.push(chunk));
      answer.on("end", () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: answer.headers }));
      answer.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error("no answer within 15 s")));
    request.on("error", reject);
    request.end();
  });
}
