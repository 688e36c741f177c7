import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, parseManifest, RELEASE_CHANNEL, storageKeys } from "@slipway/shared";
import { startRedisServer, startS3Server } from "@slipway/shared/embedded";
import { RuntimeAgent } from "../services/runtime-agent/src/agent";
import { uniqueApp } from "./harness/env";
import { json } from "./harness/http";
import { eventually } from "./harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "./harness/stack";
import { labelApp } from "./harness/apps";

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
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt`), RECONCILE_INTERVAL_S: "2" });
  const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
  await agent.start();
  const url = `http://127.0.0.1:${port}`;
  return { agent, serving: (label: string, timeoutMs = 60_000) => eventually(async () => ((await fetch(url).then((r) => r.text(), () => "")) === label ? true : undefined), timeoutMs, `${label} serving`) };
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
      await redis.stop();
      await new Promise((r) => setTimeout(r, 2000));
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

describe("fault: object storage unreachable for 10 s", () => {
  it("during the artifact upload and during a restore: retried with backoff, then succeeds; nothing corrupt marked complete", async () => {
    const s3Dir = path.join(work, "s3");
    const port = await freePort();
    let s3 = await startS3Server({ dir: s3Dir, port });
    const stack = await startInProcessStack({ S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey });
    const app = uniqueApp("s3-outage");
    const { agent, serving } = await startAgent(stack, app);
    const outage = async () => {
      await s3.stop();
      await new Promise((r) => setTimeout(r, 10_000));
      s3 = await startS3Server({ dir: s3Dir, port, secretKey: s3.secretKey });
    };
    try {
      await waitForBuild(stack.baseUrl, (await upload(stack, app, "v1")).id);
      await serving("v1");

      // Upload: the store goes away just before the worker packs and uploads the output.
      const queued = await upload(stack, app, "v2", 'POST_BUILD_COMMAND="sleep 2"');
      await eventually(async () => ((await logOf(stack, queued.id)).includes("Running POST_BUILD_COMMAND") ? true : undefined), 60_000, "the post-build step");
      await outage();
      const build = await waitForBuild(stack.baseUrl, queued.id, 90_000);
      expect(build.status).toBe("succeeded");
      const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
      const hash = createHash("sha256");
      for await (const chunk of await stack.api.store.getStream(build.artifact!.key)) hash.update(chunk as Buffer);
      expect(hash.digest("hex")).toBe(manifest.outputSha256);
      await serving("v2");

      // Restore: a release arrives while the store is down.
      const quiet = await waitForBuild(stack.baseUrl, (await upload(stack, app, "v3", "", "?deploy=false")).id);
      const down = s3.stop();
      await down;
      const { release } = (await stack.api.releases.create(app, quiet.id, "manual"))!;
      await stack.api.redis.publish(RELEASE_CHANNEL, JSON.stringify({ app, version: release.version, buildId: quiet.id }));
      await new Promise((r) => setTimeout(r, 10_000));
      s3 = await startS3Server({ dir: s3Dir, port, secretKey: s3.secretKey });
      await serving("v3", 60_000);
    } finally {
      await agent.stop();
      await stack.close();
      await s3.stop();
    }
  }, 240_000);
});
