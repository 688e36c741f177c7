import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually } from "../../../test/harness/local-stack";
import {
  processRunning,
  spawnWorker,
  startInProcessStack,
  uploadDir,
  waitForBuild,
  writeTree,
  type BuildView,
  type InProcessStack,
} from "../../../test/harness/stack";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-control-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A Python app whose pre-build step runs `command` (children included). */
const slowApp = (command: string) => ({ "app.py": "print('x')\n", "build.env": `PRE_BUILD_COMMAND="${command}"\n` });

async function upload(stack: InProcessStack, files: Record<string, string>, app = uniqueApp()): Promise<BuildView> {
  return uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-${Math.random()}`), files));
}

const logOf = async (stack: InProcessStack, id: string) => (await fetch(`${stack.baseUrl}/v1/builds/${id}/logs`)).text();
const cancel = (stack: InProcessStack, id: string) => fetch(`${stack.baseUrl}/v1/builds/${id}/cancel`, { method: "POST" });

describe("cancel and timeout", () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    stack = await startInProcessStack({ WORKER_CONCURRENCY: "1" });
  });
  afterAll(async () => stack.close());

  it("cancels a running build: its whole process tree dies within 5 s, no release, no manifest, followers see the end", async () => {
    const queued = await upload(stack, slowApp("sleep 987 & sleep 987; echo never"));
    await eventually(async () => ((await logOf(stack, queued.id)).includes("Running PRE_BUILD_COMMAND") ? true : undefined), 30_000, "the pre-build step");
    await eventually(async () => (processRunning("sleep 987") ? true : undefined), 5_000, "the sleeps to start");
    const follower = fetch(`${stack.baseUrl}/v1/builds/${queued.id}/logs`, { headers: { Accept: "text/event-stream" } }).then((r) => r.text());

    const started = Date.now();
    const response = await cancel(stack, queued.id);
    expect(response.status).toBe(202);
    expect(await json(response)).toMatchObject({ id: queued.id, status: "canceled" });
    await eventually(async () => (processRunning("sleep 987") ? undefined : true), 5_000, "the build's processes to die");
    expect(Date.now() - started).toBeLessThan(5_000);

    expect(await follower).toMatch(/event: end\ndata: canceled\n\n$/);
    const build = await waitForBuild(stack.baseUrl, queued.id);
    expect(build.status).toBe("canceled");
    expect(build.release).toBeUndefined();
    expect(await stack.api.releases.list(build.app)).toEqual([]);
    expect(await stack.api.store.exists(storageKeys.manifest(build.app, build.id))).toBe(false);

    const again = await cancel(stack, queued.id);
    expect(again.status).toBe(409);
    expect((await json<{ error: { code: string } }>(again)).error.code).toBe("build_finished");
  });

  it("cancels a queued build before any worker takes it", async () => {
    const blocker = await upload(stack, slowApp("sleep 3"));
    const queued = await upload(stack, slowApp("true"));
    expect((await json<BuildView>(await fetch(`${stack.baseUrl}/v1/builds/${queued.id}`))).status).toBe("queued");
    expect((await cancel(stack, queued.id)).status).toBe(202);
    expect(await stack.api.buildQueue.getJob(queued.id)).toBeUndefined();
    expect(await (await fetch(`${stack.baseUrl}/v1/builds/${queued.id}/logs?follow=1`)).text()).toContain("canceled before it started");
    expect((await waitForBuild(stack.baseUrl, blocker.id)).status).toBe("succeeded");
    expect((await waitForBuild(stack.baseUrl, queued.id)).status).toBe("canceled");
  });

  it("answers 404 for cancelling an unknown build", async () => {
    expect((await cancel(stack, "00000000-0000-0000-0000-000000000000")).status).toBe(404);
  });
});

describe("timeout", () => {
  it("fails a build that outlives BUILD_TIMEOUT_S and kills its process tree", async () => {
    const stack = await startInProcessStack({ BUILD_TIMEOUT_S: "2" });
    try {
      const queued = await upload(stack, slowApp("sleep 986 & sleep 986"));
      const build = await waitForBuild(stack.baseUrl, queued.id, 30_000);
      expect(build.status).toBe("failed");
      expect(build.error).toMatch(/longer than BUILD_TIMEOUT_S \(2 s\)/);
      await eventually(async () => (processRunning("sleep 986") ? undefined : true), 5_000, "the build's processes to die");
      expect(await stack.api.releases.list(build.app)).toEqual([]);
      expect((await logOf(stack, build.id)).match(/^Build .* of app /gm)).toHaveLength(1); // not retried
    } finally {
      await stack.close();
    }
  });
});

describe("retries, admission and scaling", () => {
  it("retries a transient storage failure with backoff, then succeeds", async () => {
    const stack = await startInProcessStack();
    try {
      await stack.worker.worker.pause();
      const queued = await upload(stack, { "app.py": "print('x')\n" });
      const sourceKey = storageKeys.source(queued.app, (queued as unknown as { sourceSha256: string }).sourceSha256);
      await stack.api.store.copy(sourceKey, `${sourceKey}.held`);
      await stack.api.store.remove(sourceKey);
      stack.worker.worker.resume();
      await eventually(async () => ((await logOf(stack, queued.id)).includes("will retry") ? true : undefined), 20_000, "the first attempt to fail");
      await stack.api.store.copy(`${sourceKey}.held`, sourceKey);
      const build = await waitForBuild(stack.baseUrl, queued.id, 60_000);
      expect(build.status).toBe("succeeded");
      // Two attempts started (BullMQ's own attempt counter is updated after the build record, so read the log).
      expect((await logOf(stack, build.id)).match(/^Build .* of app /gm)).toHaveLength(2);
      expect(build.release).toBe(1);
    } finally {
      await stack.close();
    }
  });

  it("refuses new builds with 429 once MAX_QUEUED_BUILDS wait", async () => {
    const stack = await startInProcessStack({ MAX_QUEUED_BUILDS: "2" }, { worker: false });
    try {
      await upload(stack, { "app.py": "" });
      await upload(stack, { "app.py": "" });
      const dir = await writeTree(path.join(work, "full"), { "app.py": "" });
      await expect(uploadDir(stack.baseUrl, uniqueApp(), dir)).rejects.toThrow(/429.*queue_full/);
    } finally {
      await stack.close();
    }
  });

  it("runs WORKER_CONCURRENCY builds at once on one worker", async () => {
    const stack = await startInProcessStack({ WORKER_CONCURRENCY: "2" });
    try {
      const a = await upload(stack, slowApp("sleep 2"));
      const b = await upload(stack, slowApp("sleep 2"));
      await eventually(async () => {
        const [x, y] = await Promise.all([a, b].map(async (q) => json<BuildView>(await fetch(`${stack.baseUrl}/v1/builds/${q.id}`))));
        return x!.status === "running" && y!.status === "running" ? true : undefined;
      }, 20_000, "both builds running together");
      expect((await waitForBuild(stack.baseUrl, a.id)).status).toBe("succeeded");
      expect((await waitForBuild(stack.baseUrl, b.id)).status).toBe("succeeded");
    } finally {
      await stack.close();
    }
  });
});

describe("worker processes", () => {
  it("a SIGKILLed worker's build is finished by another worker, with exactly one release", async () => {
    const stack = await startInProcessStack({ WORKER_LOCK_S: "2" }, { worker: false });
    const first = spawnWorker(stack, { SCRATCH_DIR: path.join(work, "worker-a") });
    let second: ReturnType<typeof spawnWorker> | undefined;
    try {
      const queued = await upload(stack, slowApp("sleep 4"));
      await eventually(async () => ((await logOf(stack, queued.id)).includes("Running PRE_BUILD_COMMAND") ? true : undefined), 60_000, "the first worker to start the build");
      first.kill("SIGKILL");
      second = spawnWorker(stack, { SCRATCH_DIR: path.join(work, "worker-b") });
      const build = await waitForBuild(stack.baseUrl, queued.id, 90_000);
      expect(build.status).toBe("succeeded");
      expect(build.release).toBe(1);
      expect((await stack.api.releases.list(build.app)).map((r) => r.buildId)).toEqual([build.id]);
      expect((await logOf(stack, queued.id)).match(/Running PRE_BUILD_COMMAND/g)).toHaveLength(2);
    } finally {
      first.kill("SIGKILL");
      second?.kill("SIGKILL");
      await stack.close();
    }
  }, 120_000);

  it("SIGTERM lets the running build finish, then the worker exits 0", async () => {
    const stack = await startInProcessStack({}, { worker: false });
    const worker = spawnWorker(stack, { SCRATCH_DIR: path.join(work, "worker-c") });
    try {
      const queued = await upload(stack, slowApp("sleep 2"));
      await eventually(async () => ((await logOf(stack, queued.id)).includes("Running PRE_BUILD_COMMAND") ? true : undefined), 60_000, "the build to start");
      const exited = new Promise<number | null>((resolve) => worker.once("exit", (code) => resolve(code)));
      worker.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect((await json<BuildView>(await fetch(`${stack.baseUrl}/v1/builds/${queued.id}`))).status).toBe("succeeded");
    } finally {
      worker.kill("SIGKILL");
      await stack.close();
    }
  }, 90_000);
});

describe("limits", () => {
  it("fails builds over the unpacked-size, file-count and output-size limits with clear errors, and cleans scratch space", async () => {
    const stack = await startInProcessStack({ MAX_UNPACKED_BYTES: "50000", MAX_SOURCE_FILES: "20", MAX_OUTPUT_BYTES: "30000" });
    try {
      const big = await waitForBuild(stack.baseUrl, (await upload(stack, { "app.py": "", "data.txt": "x".repeat(60_000) })).id);
      expect(big.error).toMatch(/refused: archive unpacks to more than 50000 bytes/);
      const files = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`m${i}.py`, ""]));
      const many = await waitForBuild(stack.baseUrl, (await upload(stack, files)).id);
      expect(many.error).toMatch(/refused: archive holds more than 20 entries/);
      // A venv packs to far more than 30 kB.
      const output = await waitForBuild(stack.baseUrl, (await upload(stack, { "app.py": "" })).id);
      expect(output.error).toMatch(/over MAX_OUTPUT_BYTES \(30000\)/);
      const { readdir } = await import("node:fs/promises");
      expect(await readdir(stack.env.SCRATCH_DIR!)).toEqual([]);
    } finally {
      await stack.close();
    }
  });
});
