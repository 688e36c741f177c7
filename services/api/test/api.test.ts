import { createHash, randomUUID } from "node:crypto";
import { gzipSync } from "node:zlib";
import { mkdtemp } from "node:fs/promises";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort, loadApiConfig, ObjectStore, storageKeys } from "@slipway/shared";
import { serviceEnv, uniqueApp } from "../../../test/harness/env";
import { json, listen } from "../../../test/harness/http";
import { writeTarGz } from "../../../test/harness/tarballs";
import { createApi } from "../src/app";
import { closeContext, createContext, type ApiContext } from "../src/context";
import { createMetrics, type ApiMetrics } from "../src/metrics";

let ctx: ApiContext;
let metrics: ApiMetrics;
let base: string;
let close: () => Promise<void>;
let sourceTarGz: Buffer;
const env = { ...serviceEnv(), API_HOST: "127.0.0.1", QUEUE_PREFIX: `test-${randomUUID().slice(0, 8)}`, MAX_SOURCE_BYTES: String(64 * 1024) };

beforeAll(async () => {
  ctx = await createContext(loadApiConfig(env), createLogger("api-test", "silent"));
  metrics = createMetrics(ctx);
  const server = await listen(createApi(ctx, metrics));
  base = server.url;
  close = async () => {
    await server.close();
    await metrics.close();
  };
  const dir = await mkdtemp(path.join(os.tmpdir(), "slipway-api-"));
  writeTarGz(path.join(dir, "src.tar.gz"), [{ name: "app.py", content: "print('hello')\n" }]);
  sourceTarGz = await readFile(path.join(dir, "src.tar.gz"));
});

afterAll(async () => {
  await close();
  await ctx.buildQueue.obliterate({ force: true });
  await closeContext(ctx);
});

const upload = (app: string, body: Buffer | string, contentType = "application/gzip", query = "") =>
  fetch(`${base}/v1/apps/${app}/builds${query}`, { method: "POST", headers: { "Content-Type": contentType }, body });

/** Reads a streamed body as it arrives: `until` waits for some text, `rest` for the end. */
function readText(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const readMore = async () => {
    const { done, value } = await reader.read();
    if (!done) text += value;
    return !done;
  };
  return {
    until: async (wanted: string) => {
      while (!text.includes(wanted)) if (!(await readMore())) throw new Error(`the stream ended without ${JSON.stringify(wanted)}: ${text}`);
    },
    rest: async () => {
      while (await readMore());
      return text;
    },
  };
}

const expectError = async (response: Response, status: number, code: string) => {
  expect(response.status).toBe(status);
  const body = await json<{ error: { code: string; message: string } }>(response);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(5);
};

describe("GET /healthz", () => {
  it("answers ok when Redis and storage answer", async () => {
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok" });
  });
});

describe("POST /v1/apps/:app/builds", () => {
  it("answers 503 storage_unavailable when object storage cannot be reached once its retries are spent, and records no build", async () => {
    // The same API with a store whose endpoint nothing listens on, retried twice.
    const unreachable = new ObjectStore({ ...loadApiConfig(env), S3_ENDPOINT: `http://127.0.0.1:${await freePort()}` }, { delaysMs: [10, 10] });
    const server = await listen(createApi({ ...ctx, store: unreachable }, metrics));
    try {
      const app = uniqueApp();
      const response = await fetch(`${server.url}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body: sourceTarGz });
      await expectError(response, 503, "storage_unavailable");
      expect(await ctx.builds.idsForApp(app)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("stores the source under its content address, records a queued build and enqueues it", async () => {
    const app = uniqueApp();
    const response = await upload(app, sourceTarGz);
    expect(response.status).toBe(202);
    const build = await json<{ id: string; status: string; sourceSha256: string; app: string }>(response);
    expect(response.headers.get("location")).toBe(`/v1/builds/${build.id}`);
    const sha = createHash("sha256").update(sourceTarGz).digest("hex");
    expect(build).toMatchObject({ app, status: "queued", sourceSha256: sha });
    expect(await ctx.store.exists(storageKeys.source(app, sha))).toBe(true);
    expect((await ctx.store.list("incoming/")).length).toBe(0);

    const job = await ctx.buildQueue.getJob(build.id);
    // The job names the build; the record holds the source and whether to deploy.
    expect(Object.keys(job?.data ?? {}).sort()).toEqual(["app", "buildId", "noCache", "requestId"]);
    expect(job?.data).toMatchObject({ buildId: build.id, app, noCache: false });
    expect(await ctx.builds.get(build.id)).toMatchObject({ sourceSha256: sha, deploy: true, sourceKey: storageKeys.source(app, sha) });

    const fetched = await fetch(`${base}/v1/builds/${build.id}`);
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toMatchObject({ id: build.id, status: "queued" });
    expect((await fetch(`${base}/v1/apps/${app}`)).status).toBe(200);
  });

  it("carries the caller's X-Request-Id into the build job, whose worker logs it", async () => {
    const response = await fetch(`${base}/v1/apps/${uniqueApp()}/builds`, {
      method: "POST",
      headers: { "Content-Type": "application/gzip", "X-Request-Id": "req-trace-42" },
      body: sourceTarGz,
    });
    expect(response.headers.get("x-request-id")).toBe("req-trace-42");
    const { id } = await json<{ id: string }>(response);
    expect((await ctx.buildQueue.getJob(id))?.data.requestId).toBe("req-trace-42");
  });

  it("honours deploy=false", async () => {
    const response = await upload(uniqueApp(), sourceTarGz, "application/gzip", "?deploy=false");
    expect(response.status).toBe(202);
    const { id } = await json<{ id: string }>(response);
    expect((await ctx.builds.get(id))?.deploy).toBe(false);
  });

  it("refuses a bad app name", async () => {
    await expectError(await upload("Bad_Name", sourceTarGz), 400, "invalid_app_name");
    await expectError(await upload("-leading", sourceTarGz), 400, "invalid_app_name");
  });

  it("refuses a wrong media type", async () => {
    await expectError(await upload(uniqueApp(), sourceTarGz, "application/json"), 415, "unsupported_media_type");
    await expectError(await upload(uniqueApp(), sourceTarGz, "text/plain"), 415, "unsupported_media_type");
  });

  it("refuses an empty body", async () => {
    await expectError(await upload(uniqueApp(), Buffer.alloc(0)), 400, "empty_body");
  });

  it("refuses a body that is not gzip, and stores nothing", async () => {
    const app = uniqueApp();
    await expectError(await upload(app, "just some text, not an archive"), 400, "invalid_archive");
    await expectError(await upload(app, Buffer.from([0x1f])), 400, "invalid_archive");
    expect(await ctx.store.list(storageKeys.sourcesPrefix(app))).toEqual([]);
    expect(await ctx.store.list("incoming/")).toEqual([]);
  });

  it("refuses a body over MAX_SOURCE_BYTES with 413, declared or streamed", async () => {
    const big = gzipSync(Buffer.from(Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 90))).join("")), { level: 0 });
    expect(big.length).toBeGreaterThan(64 * 1024);
    await expectError(await upload(uniqueApp(), big), 413, "payload_too_large");
    // Without a Content-Length the limit is enforced while streaming.
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(big);
        controller.close();
      },
    });
    const response = await fetch(`${base}/v1/apps/${uniqueApp()}/builds`, {
      method: "POST",
      headers: { "Content-Type": "application/gzip" },
      body: chunked,
      duplex: "half",
    } as RequestInit);
    await expectError(response, 413, "payload_too_large");
  });
});

describe("GET /v1/builds/:id and its logs", () => {
  it("answers 404 with the error shape for an unknown build", async () => {
    await expectError(await fetch(`${base}/v1/builds/${randomUUID()}`), 404, "not_found");
    await expectError(await fetch(`${base}/v1/builds/${randomUUID()}/logs`), 404, "not_found");
  });

  it("serves the log so far as text, and follows it live as Server-Sent Events until the build ends", async () => {
    const response = await upload(uniqueApp(), sourceTarGz);
    const { id } = await json<{ id: string }>(response);
    await ctx.buildLogs.append(id, ["step 1", "step 2"]);
    const text = await fetch(`${base}/v1/builds/${id}/logs`);
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await text.text()).toBe("step 1\nstep 2\n");

    const events = await fetch(`${base}/v1/builds/${id}/logs`, { headers: { Accept: "text/event-stream" } });
    expect(events.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const stream = readText(events);
    // Once the lines so far have arrived, the server is following: what comes next arrives live.
    await stream.until("data: step 2\n\n");
    await ctx.buildLogs.append(id, ["step 3"]);
    await ctx.buildLogs.end(id, "succeeded");
    const body = await stream.rest(); // resolves only when the server ends the stream
    expect(body).toContain("data: step 1\n\n");
    expect(body).toContain("data: step 3\n\n");
    expect(body.trim().endsWith("event: end\ndata: succeeded")).toBe(true);

    const followed = await fetch(`${base}/v1/builds/${id}/logs?follow=1`);
    expect(await followed.text()).toBe("step 1\nstep 2\nstep 3\n");
  });
});

describe("releases and instances", () => {
  it("lists an app's releases newest first and its instances; 404 for an unknown app", async () => {
    const app = uniqueApp();
    const { id } = await json<{ id: string }>(await upload(app, sourceTarGz));
    // Only a running build gets its release, and only once.
    expect(await ctx.releases.create(app, id, "build")).toBeUndefined();
    await ctx.builds.transition(id, ["queued"], { status: "running" });
    const first = await ctx.releases.create(app, id, "build");
    const again = await ctx.releases.create(app, id, "build");
    expect(again).toMatchObject({ created: false, release: { version: first!.release.version } });
    await ctx.releases.create(app, id, "rollback");
    const releases = await json<{ version: number; reason: string }[]>(await fetch(`${base}/v1/apps/${app}/releases`));
    expect(releases.map((r) => [r.version, r.reason])).toEqual([
      [2, "rollback"],
      [1, "build"],
    ]);

    await ctx.instances.report(app, {
      instanceId: "i-1",
      release: 2,
      buildId: id,
      state: "running",
      appPath: "/srv/x",
      lastHeartbeatAt: new Date().toISOString(),
    });
    expect(await json(await fetch(`${base}/v1/apps/${app}/instances`))).toMatchObject([{ instanceId: "i-1", state: "running", release: 2 }]);

    await expectError(await fetch(`${base}/v1/apps/${uniqueApp()}/releases`), 404, "not_found");
    await expectError(await fetch(`${base}/v1/apps/${uniqueApp()}/instances`), 404, "not_found");
  });

  it("stores app config and rejects bad JSON", async () => {
    const app = uniqueApp();
    const put = await fetch(`${base}/v1/apps/${app}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ env: { GREETING: "hi" }, startupCommand: "python app.py" }),
    });
    expect(put.status).toBe(201);
    expect(await put.json()).toMatchObject({ name: app, env: { GREETING: "hi" }, startupCommand: "python app.py" });
    const bad = await fetch(`${base}/v1/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: "{nope" });
    await expectError(bad, 400, "invalid_json");
    const wrong = await fetch(`${base}/v1/apps/${app}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ env: { "1X": "y" } }) });
    await expectError(wrong, 400, "invalid_body");
  });
});
