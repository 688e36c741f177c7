import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { mkdtemp, rm } from "node:fs/promises";
import { createLogger, packDirectory, type BuildResponse } from "@slipway/shared";
import { startRedisServer } from "@slipway/shared/embedded";
import type { RunningWorker } from "@slipway/build-worker";
import { compiledEntry } from "./entries";
import { serviceEnv } from "./env";
import { json } from "./http";
import { startServices, type ServiceStack } from "./services";

export interface InProcessStack extends ServiceStack {
  /** Absent when started with `{ worker: false }`. */
  worker: RunningWorker;
}

/**
 * The API and one build worker in this process, on the harness's Redis and S3, with a queue and
 * bucket of their own; `ownRedis` gives the stack a redis-server of its own instead, for a test
 * that needs the default key prefix without sharing it.
 */
export async function startInProcessStack(extraEnv: Record<string, string> = {}, options: { worker?: boolean; ownRedis?: boolean } = {}): Promise<InProcessStack> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), "slipway-scratch-"));
  const redis = options.ownRedis ? await startRedisServer() : undefined;
  const env: Record<string, string> = {
    ...serviceEnv(),
    ...(redis && { REDIS_URL: redis.url }),
    QUEUE_PREFIX: `test-${randomUUID().slice(0, 8)}`,
    SCRATCH_DIR: scratch,
    ...extraEnv,
  };
  const services = await startServices(env, createLogger("test", env.LOG_LEVEL), options).catch(async (error: unknown) => {
    await redis?.stop();
    throw error;
  });
  return {
    ...services,
    worker: services.worker as RunningWorker,
    close: async () => {
      await services.close();
      await redis?.stop();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** A build as the API answers it. */
export type BuildView = BuildResponse;

/** Packs `dir` and uploads it as a new build of `app`. */
export async function uploadDir(baseUrl: string, app: string, dir: string, query = ""): Promise<BuildView> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), "slipway-upload-"));
  try {
    const packed = await packDirectory(dir, path.join(tmp, "src.tar.gz"));
    return await uploadFile(baseUrl, app, packed.file, query);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export async function uploadFile(baseUrl: string, app: string, file: string, query = ""): Promise<BuildView> {
  const response = await fetch(`${baseUrl}/v1/apps/${app}/builds${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/gzip" },
    body: await readFile(file),
  });
  if (response.status !== 202) throw new Error(`upload answered ${response.status}: ${await response.text()}`);
  return json<BuildView>(response);
}

export async function waitForBuild(baseUrl: string, id: string, timeoutMs = 120_000): Promise<BuildView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const build = await json<BuildView>(await fetch(`${baseUrl}/v1/builds/${id}`, { signal: AbortSignal.timeout(30_000) }));
    if (["succeeded", "failed", "canceled"].includes(build.status)) return build;
    if (Date.now() > deadline) throw new Error(`build ${id} still ${build.status} after ${timeoutMs} ms${await logTail(baseUrl, id)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The last lines of a build's live log, so a build that never ends says where it stopped. */
export async function logTail(baseUrl: string, id: string): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 3000);
  try {
    const response = await fetch(`${baseUrl}/v1/builds/${id}/logs`, { signal: controller.signal });
    const text = await response.text();
    return `; its log ends:\n${text.split("\n").slice(-25).join("\n")}`;
  } catch (error) {
    return ` (its log: ${(error as Error).message})`;
  } finally {
    clearTimeout(timer);
  }
}

/** Downloads and extracts a build's artifact into a new directory under `into`; answers that directory. */
export async function extractArtifact(stack: InProcessStack, build: BuildView, into: string): Promise<string> {
  const { extractStream, compressionOf } = await import("@slipway/shared");
  const dir = await mkdtemp(path.join(into, "artifact-"));
  await extractStream(await stack.api.store.getStream(build.artifact!.key), dir, {
    allowExternalSymlinks: true,
    compression: compressionOf(build.artifact!.key),
  });
  return dir;
}

/** Writes `files` (relative path → content) under a new directory `dir`. */
export async function writeTree(dir: string, files: Record<string, string>): Promise<string> {
  const { mkdir, writeFile } = await import("node:fs/promises");
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  return dir;
}

/** A build worker as a real process (what `npm start -w services/build-worker` runs), on the stack's Redis, S3 and queue. */
export function spawnWorker(stack: InProcessStack, extraEnv: Record<string, string> = {}) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
  return spawn(process.execPath, [compiledEntry("build-worker")], {
    cwd: root,
    env: { ...(process.env as Record<string, string>), ...stack.env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Whether any process has `pattern` in its command line. */
export function processRunning(pattern: string): boolean {
  return spawnSync("pgrep", ["-f", pattern]).status === 0;
}

/** A runtime agent as a real process (what `npm start -w services/runtime-agent` runs). */
export function spawnAgent(stack: InProcessStack, env: { APP: string; INSTANCE_ID: string; PORT: string; RUNTIME_ROOT: string } & Record<string, string>) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
  const child = spawn(process.execPath, [compiledEntry("runtime-agent")], {
    cwd: root,
    env: { ...(process.env as Record<string, string>), ...stack.env, HEALTH_TIMEOUT_S: "20", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}
