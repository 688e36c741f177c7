import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { freePort, waitForPort } from "./free-port";

export interface EmbeddedServer {
  /** What clients connect to: a redis:// URL, or the S3 endpoint URL. */
  url: string;
  stop(): Promise<void>;
}

/** Starts a real `redis-server` child on a free loopback port; persistence off unless `dir` is given. */
export async function startRedisServer(options: { dir?: string; port?: number } = {}): Promise<EmbeddedServer> {
  const port = options.port ?? (await freePort());
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--protected-mode", "no"];
  if (options.dir) {
    await mkdir(options.dir, { recursive: true });
    args.push("--dir", options.dir, "--appendonly", "yes", "--save", "");
  } else {
    args.push("--save", "", "--appendonly", "no");
  }
  const child = spawn(process.env.REDIS_SERVER_BIN ?? "redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<never>((_, reject) => {
    child.on("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "ENOENT"
          ? new Error("redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL")
          : error,
      );
    });
    child.on("exit", (code) => reject(new Error(`redis-server exited with code ${code}`)));
  });
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port, 10_000), exited]);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => stopChild(child),
  };
}

export function stopChild(child: import("node:child_process").ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}
