import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@slipway/shared";
import { serviceEnv } from "./env";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface LocalStack {
  apiUrl: string;
  /** The front door's HTTP port (Caddy, when installed): apps answer there by Host header. */
  frontDoorPort: number;
  instanceUrls: string[];
  dataDir: string;
  app: string;
  env: Record<string, string>;
  /** Everything the stack printed so far. */
  output(): string;
  child: ChildProcess;
  /** Ctrl-C, as a user would; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * `npm start` as real processes (API, build worker, one host agent), on the harness's
 * Redis and S3 server with a bucket and queue of its own.
 */
export async function startLocalStack(app: string, options: { instances?: number; env?: Record<string, string> } = {}): Promise<LocalStack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "slipway-stack-"));
  const apiPort = await freePort();
  const frontDoorPort = await freePort();
  const ports = await Promise.all(Array.from({ length: options.instances ?? 2 }, () => freePort()));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    ...serviceEnv(),
    QUEUE_PREFIX: `e2e-${randomUUID().slice(0, 8)}`,
    SLIPWAY_DATA_DIR: dataDir,
    SCRATCH_DIR: path.join(dataDir, "build"),
    API_PORT: String(apiPort),
    FRONT_DOOR_HTTP_PORT: String(frontDoorPort),
    // One host agent with exactly these ports, and every app asks for this many instances: the
    // app the test deploys runs on these ports, whichever instance gets which.
    INSTANCE_PORTS: ports.join(","),
    DEFAULT_INSTANCES: String(ports.length),
    LOCAL_HOSTS: "1",
    SLIPWAY_APP: app,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "info",
    RECONCILE_INTERVAL_S: "5",
    ...options.env,
  };
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts/local-stack.ts")], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${apiUrl}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the local stack did not come up:\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    apiUrl,
    frontDoorPort,
    instanceUrls: ports.map((port) => `http://127.0.0.1:${port}`),
    dataDir,
    app,
    env,
    output: () => output,
    child,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGINT");
      const code = await exited;
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Polls `check` until it returns a value, or fails with the last error after `timeoutMs`. */
/** `promise`, or an error naming `what` once `ms` have passed. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      // A check that never answers (a request to a server that accepted and went quiet) must not outlast the deadline.
      const value = await withDeadline(check(), Math.max(deadline - Date.now(), 1000), `one check for ${what}`);
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
