import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { freePort, waitForPort } from "./free-port";

export interface EmbeddedServer {
  /** What clients connect to: a redis:// URL (with its password), or the S3 endpoint URL. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedRedis extends EmbeddedServer {
  /** Pass it to a restart on the same `dir` so that clients holding `url` reconnect. */
  password: string;
}

/**
 * Commands no Slipway service sends and an intruder wants: CONFIG (`CONFIG SET dir` writes files
 * anywhere the server can), replication to a server of theirs, DEBUG and MODULE. Disabled here as
 * well as behind the password, in case the password leaks.
 */
const DISABLED_COMMANDS = ["CONFIG", "DEBUG", "MODULE", "REPLICAOF", "SLAVEOF"];

/** The arguments that lock a redis-server down: a password, and the commands above gone. */
export function redisHardeningArgs(password: string): string[] {
  return ["--requirepass", password, ...DISABLED_COMMANDS.flatMap((command) => ["--rename-command", command, ""])];
}

/** A random password of URL-safe characters, so it goes into a redis:// URL as it is. */
export const randomSecret = () => randomBytes(24).toString("hex");

/**
 * Starts a real `redis-server` child on a free loopback port, requiring a password (random unless
 * given): builds and apps run on this host and must not reach Slipway's records. Persistence is off
 * unless `dir` is given.
 */
export async function startRedisServer(options: { dir?: string; port?: number; password?: string } = {}): Promise<EmbeddedRedis> {
  const port = options.port ?? (await freePort());
  const password = options.password ?? randomSecret();
  const args = ["--port", String(port), "--bind", "127.0.0.1", ...redisHardeningArgs(password)];
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
    url: `redis://:${password}@127.0.0.1:${port}`,
    password,
    stop: () => stopChild(child),
  };
}

/** `url` with its password replaced by `***`, for logs and banners. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString().replace(/\/$/, "");
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
