import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, stopChild, type EmbeddedRedis } from "@slipway/shared/embedded";
import { heartbeatProblem } from "@slipway/shared/light";
import { compiledEntry } from "../../../test/harness/entries";
import { serviceEnv } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";

const healthcheck = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/healthcheck.js");
let work: string;
let redis: EmbeddedRedis;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-healthcheck-"));
  // A Redis of this test's own: stopping it is how the worker loses Redis.
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Runs the compiled healthcheck as the container would; answers its exit code and output. */
async function check(scratchDir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [healthcheck], { env: { PATH: process.env.PATH, SCRATCH_DIR: scratchDir } });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

describe("the build worker's healthcheck", () => {
  it("is healthy while the worker consumes and reaches Redis, unhealthy once Redis is gone, and after the worker stops", async () => {
    const scratchDir = path.join(work, "scratch");
    expect(await check(scratchDir)).toMatchObject({ code: 1, output: expect.stringMatching(/no heartbeat at .*: the worker is not running, or not at work yet/) });
    const worker = spawn(process.execPath, [compiledEntry("build-worker")], {
      env: { ...process.env, ...serviceEnv(), REDIS_URL: redis.url, QUEUE_PREFIX: `hc-${randomUUID().slice(0, 8)}`, SCRATCH_DIR: scratchDir, HEARTBEAT_S: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    worker.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    worker.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      const healthy = await eventually(async () => ((await check(scratchDir)).code === 0 ? true : undefined), 60_000, `the worker to report healthy\n${output}`);
      expect(healthy).toBe(true);
      expect((await check(scratchDir)).output).toBe("build worker healthy\n");

      await redis.stop();
      const unhealthy = await eventually(async () => {
        const result = await check(scratchDir);
        return result.code === 1 ? result.output : undefined;
      }, 30_000, "the healthcheck to fail without Redis");
      expect(unhealthy).toMatch(/^build worker unhealthy: last heartbeat \d+ s ago \(one is due every 1 s\): the worker cannot reach Redis/);
      expect(worker.exitCode, "the worker itself rides the outage out").toBeNull();
    } finally {
      await stopChild(worker, 15_000);
    }
    expect(await check(scratchDir)).toMatchObject({ code: 1, output: expect.stringMatching(/no heartbeat at /) });
  });

  it("counts three missed beats as unhealthy, not one, and says what is wrong with a bad file", async () => {
    const file = path.join(work, "beat");
    const now = Date.now();
    await writeFile(file, JSON.stringify({ at: now - 25_000, intervalMs: 10_000 }));
    expect(await heartbeatProblem(file, now)).toBeUndefined();
    await writeFile(file, JSON.stringify({ at: now - 31_000, intervalMs: 10_000 }));
    expect(await heartbeatProblem(file, now)).toMatch(/^last heartbeat 31 s ago \(one is due every 10 s\)/);
    await writeFile(file, "{");
    expect(await heartbeatProblem(file, now)).toMatch(/^unreadable heartbeat at /);
    await writeFile(file, JSON.stringify({ at: "yesterday" }));
    expect(await heartbeatProblem(file, now)).toBe(`unreadable heartbeat at ${file}`);
  });
});
