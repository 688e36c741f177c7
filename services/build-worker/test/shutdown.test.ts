import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, type EmbeddedRedis } from "@slipway/shared/embedded";
import { compiledEntry } from "../../../test/harness/entries";
import { serviceEnv } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";

let work: string;
let redis: EmbeddedRedis | undefined;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-worker-shutdown-"));
});
afterAll(async () => {
  await redis?.stop().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

describe("a build worker asked to stop", () => {
  it("exits within its grace period while Redis is down, instead of waiting for Redis for ever", async () => {
    redis = await startRedisServer();
    const child = spawn(process.execPath, [compiledEntry("build-worker")], {
      env: { ...(process.env as Record<string, string>), ...serviceEnv(), REDIS_URL: redis.url, SCRATCH_DIR: path.join(work, "scratch"), SHUTDOWN_GRACE_S: "2", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await eventually(async () => (output.includes("build worker ready") ? true : undefined), 60_000, `the worker to start\n${output}`);
      await redis.stop();
      await eventually(async () => (/ECONNREFUSED|Connection is closed|error/i.test(output.split("build worker ready")[1] ?? "") ? true : undefined), 30_000, "the worker to meet the outage");
      const asked = Date.now();
      child.kill("SIGTERM");
      const code = await Promise.race([exited, new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 20_000))]);
      expect(code, output.slice(-2000)).toBe(0);
      expect(Date.now() - asked).toBeLessThan(20_000);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
