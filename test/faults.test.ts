import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, isTransientStorageError, parseManifest, storageKeys, type ObjectStore } from "@slipway/shared";
import { startRedisServer, startS3Server } from "@slipway/shared/embedded";
import { uniqueApp } from "./harness/env";
import { json } from "./harness/http";
import { eventually, withDeadline } from "./harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "./harness/stack";
import { labelApp } from "./harness/apps";
import { releaseByHand, startAgentOn } from "./harness/agents";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-faults-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const webApp = (label: string) => labelApp(label);

async function upload(stack: InProcessStack, app: string, label: string, buildEnv = "", query = ""): Promise<BuildView> {
  const dir = await writeTree(path.join(work, `${app}-${label}`), { "app.py": webApp(label), ...(buildEnv ? { "build.env": buildEnv } : {}) });
  return uploadDir(stack.baseUrl, app, dir, query);
}
const logOf = async (stack: InProcessStack, id: string) => (await fetch(`${stack.baseUrl}/v1/builds/${id}/logs`)).text();

async function startAgent(stack: InProcessStack, app: string) {
  const port = await freePort();
  const agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt`), RECONCILE_INTERVAL_S: "2" });
  const url = `http://127.0.0.1:${port}`;
  return { agent, serving: (label: string, timeoutMs = 60_000) => eventually(async () => ((await fetch(url).then((r) => r.text(), () => "")) === label ? true : undefined), timeoutMs, `${label} serving`) };
}

/** Resolves once `client` reports a refused connection: it has tried to reconnect while its server was down. */
function connectionRefused(client: { on(event: "error", listener: (error: Error) => void): unknown; off(event: "error", listener: (error: Error) => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const onError = (error: Error) => {
      if ((error as NodeJS.ErrnoException).code !== "ECONNREFUSED") return;
      client.off("error", onError);
      resolve();
    };
    client.on("error", onError);
  });
}

const UPLOADS = ["putObject", "initiateNewMultipartUpload", "uploadPart", "completeMultipartUpload"];
const DOWNLOADS = ["getObject", "statObject"];

/**
 * Counts the requests of `store` that its S3 server refused (the store retries them without a
 * word), by calling method of its client: how the test knows the store has met an outage.
 */
async function refusalsOf(store: ObjectStore) {
  const refusals: string[] = [];
  // The store loads its client on first use and keeps the promise of it: that promise is swapped.
  const holder = store as unknown as { client(): Promise<object>; clientLoaded: Promise<object> };
  const client = await holder.client();
  holder.clientLoaded = Promise.resolve(new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args);
        if (result instanceof Promise) result.catch((error: unknown) => isTransientStorageError(error) && refusals.push(String(property)));
        return result;
      };
    },
  }));
  return { refused: (methods: string[]) => refusals.filter((method) => methods.includes(method)).length };
}

describe("fault: Redis restarts mid-build (AOF on)", () => {
  it("the build completes, no job is lost, exactly one release, and the agent reconnects", async () => {
    const redisDir = path.join(work, "redis");
    const port = await freePort();
    let redis = await startRedisServer({ dir: redisDir, port });
    const stack = await startInProcessStack({ REDIS_URL: redis.url });
    const app = uniqueApp("redis-restart");
    const { agent, serving } = await startAgent(stack, app);
    try {
      await waitForBuild(stack.baseUrl, (await upload(stack, app, "v1")).id);
      await serving("v1");
      const queued = await upload(stack, app, "v2", 'PRE_BUILD_COMMAND="sleep 3"');
      await eventually(async () => ((await logOf(stack, queued.id)).includes("Running PRE_BUILD_COMMAND") ? true : undefined), 30_000, "the build to run");
      // Down until the worker's and the API's (and the agent's) connections have each had a reconnect refused.
      const outageSeen = Promise.all([connectionRefused(stack.worker.worker), connectionRefused(stack.api.redis)]);
      await redis.stop();
      await withDeadline(outageSeen, 30_000, "the clients noticing that Redis is down");
      redis = await startRedisServer({ dir: redisDir, port, password: redis.password });
      const build = await waitForBuild(stack.baseUrl, queued.id, 90_000);
      expect(build.status).toBe("succeeded");
      expect(build.release).toBe(2);
      const releases = await json<{ version: number; buildId: string }[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`));
      expect(releases.map((r) => r.version)).toEqual([2, 1]);
      expect(releases.filter((r) => r.buildId === build.id)).toHaveLength(1);
      await serving("v2");
      // Nothing left behind in the queue.
      await eventually(async () => ((await stack.api.buildQueue.getJobCountByTypes("waiting", "active", "delayed")) === 0 ? true : undefined), 20_000, "the queue to drain");
    } finally {
      await agent.stop();
      await stack.close();
      await redis.stop();
    }
  }, 180_000);
});

describe("fault: object storage unreachable while a build uploads and an agent restores", () => {
  it("during the artifact upload and during a restore: retried with backoff, then succeeds; nothing corrupt marked complete", async () => {
    const s3Dir = path.join(work, "s3");
    const port = await freePort();
    let s3 = await startS3Server({ dir: s3Dir, port });
    const stack = await startInProcessStack({ S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey });
    const app = uniqueApp("s3-outage");
    const { agent, serving } = await startAgent(stack, app);
    const workerStore = await refusalsOf(stack.worker.ctx.store);
    const agentStore = await refusalsOf(stack.api.store);
    try {
      await waitForBuild(stack.baseUrl, (await upload(stack, app, "v1")).id);
      await serving("v1");

      // Upload: the store goes away just before the worker packs and uploads the output.
      const queued = await upload(stack, app, "v2", 'POST_BUILD_COMMAND="sleep 2"');
      await eventually(async () => ((await logOf(stack, queued.id)).includes("Running POST_BUILD_COMMAND") ? true : undefined), 60_000, "the post-build step");
      const uploadsRefusedBefore = workerStore.refused(UPLOADS);
      await s3.stop();
      // Down until the worker's upload has been refused and retried after its backoff, and refused again.
      await eventually(async () => (workerStore.refused(UPLOADS) >= uploadsRefusedBefore + 2 ? true : undefined), 60_000, "the artifact upload to be refused twice");
      s3 = await startS3Server({ dir: s3Dir, port, secretKey: s3.secretKey });
      const build = await waitForBuild(stack.baseUrl, queued.id, 90_000);
      expect(build.status).toBe("succeeded");
      const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
      const hash = createHash("sha256");
      for await (const chunk of await stack.api.store.getStream(build.artifact!.key)) hash.update(chunk as Buffer);
      expect(hash.digest("hex")).toBe(manifest.outputSha256);
      await serving("v2");

      // Restore: a release arrives while the store is down.
      const quiet = await waitForBuild(stack.baseUrl, (await upload(stack, app, "v3", "", "?deploy=false")).id);
      await s3.stop();
      const downloadsRefusedBefore = agentStore.refused(DOWNLOADS);
      const version = await releaseByHand(stack, app, quiet.id);
      // Down until the agent, restoring the new release, has had its download refused and refused again after its backoff.
      await eventually(async () => {
        const restoring = (await stack.api.instances.list(app)).some((i) => i.release === version && i.state === "restoring");
        return restoring && agentStore.refused(DOWNLOADS) >= downloadsRefusedBefore + 2 ? true : undefined;
      }, 60_000, "the restore's download to be refused twice");
      s3 = await startS3Server({ dir: s3Dir, port, secretKey: s3.secretKey });
      await serving("v3", 60_000);
    } finally {
      await agent.stop();
      await stack.close();
      await s3.stop();
    }
  }, 240_000);
});

describe("fault: Redis down while the API is asked", () => {
  it("answers 503 redis_unavailable after REDIS_COMMAND_TIMEOUT_S instead of hanging; once Redis is back it serves again, nothing lost", async () => {
    const redisDir = path.join(work, "redis-down");
    const port = await freePort();
    let redis = await startRedisServer({ dir: redisDir, port });
    const stack = await startInProcessStack({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_S: "1" }, { worker: false });
    const app = uniqueApp("redis-down");
    try {
      const created = await fetch(`${stack.baseUrl}/v1/apps/${app}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ env: { KEPT: "yes" } }) });
      expect(created.ok).toBe(true);
      const outageSeen = connectionRefused(stack.api.redis);
      await redis.stop();
      await withDeadline(outageSeen, 30_000, "the API noticing that Redis is down");
      for (const [method, url] of [["GET", `/v1/apps/${app}`], ["GET", "/v1/apps"], ["POST", `/v1/apps/${app}/rebuild`]] as const) {
        const response = await fetch(`${stack.baseUrl}${url}`, { method });
        expect(response.status, `${method} ${url}`).toBe(503);
        expect((await json<{ error: { code: string } }>(response)).error.code).toBe("redis_unavailable");
      }
      redis = await startRedisServer({ dir: redisDir, port, password: redis.password });
      const back = await eventually(async () => {
        const response = await fetch(`${stack.baseUrl}/v1/apps/${app}?reveal=true`);
        return response.status === 200 ? json<{ env: Record<string, string> }>(response) : undefined;
      }, 30_000, "the API answering again");
      expect(back.env).toEqual({ KEPT: "yes" });
    } finally {
      await stack.close();
      await redis.stop();
    }
  }, 90_000);
});
