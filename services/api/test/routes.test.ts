import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Router } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentReleasePointerSchema, InvalidIdError, RELEASE_CHANNEL, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually } from "../../../test/harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../../../test/harness/stack";
import { openApiDocument } from "../src/openapi";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-routes-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sourceDir = (name: string, files: Record<string, string> = { "app.py": "print('x')\n" }) => writeTree(path.join(work, `${name}-${randomUUID()}`), files);
const expectError = async (response: Response, status: number, code: string) => {
  expect(response.status).toBe(status);
  expect((await json<{ error: { code: string; message: string } }>(response)).error.code).toBe(code);
};

describe("with API_TOKEN set", () => {
  let stack: InProcessStack;
  const token = "s3cret-token";
  beforeAll(async () => {
    stack = await startInProcessStack({ API_TOKEN: token }, { worker: false });
  });
  afterAll(async () => stack.close());

  it("every /v1 route needs the bearer token; /healthz, /metrics and /openapi.json stay open", async () => {
    const app = uniqueApp();
    const calls: [string, string][] = [
      ["GET", "/v1/apps"],
      ["GET", `/v1/apps/${app}`],
      ["PUT", `/v1/apps/${app}`],
      ["PATCH", `/v1/apps/${app}/config`],
      ["DELETE", `/v1/apps/${app}`],
      ["POST", `/v1/apps/${app}/builds`],
      ["POST", `/v1/apps/${app}/rebuild`],
      ["GET", `/v1/apps/${app}/builds`],
      ["GET", `/v1/builds/${randomUUID()}`],
      ["GET", `/v1/builds/${randomUUID()}/logs`],
      ["POST", `/v1/builds/${randomUUID()}/cancel`],
      ["GET", `/v1/apps/${app}/releases`],
      ["POST", `/v1/apps/${app}/releases`],
      ["GET", `/v1/apps/${app}/instances`],
    ];
    for (const [method, url] of calls) {
      const none = await fetch(`${stack.baseUrl}${url}`, { method });
      await expectError(none, 401, "unauthorized");
      expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await expectError(await fetch(`${stack.baseUrl}${url}`, { method, headers: { Authorization: "Bearer wrong" } }), 401, "unauthorized");
      await expectError(await fetch(`${stack.baseUrl}${url}`, { method, headers: { Authorization: `Basic ${token}` } }), 401, "unauthorized");
    }
    const ok = await fetch(`${stack.baseUrl}/v1/apps`, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    for (const open of ["/healthz", "/metrics", "/openapi.json"]) expect((await fetch(`${stack.baseUrl}${open}`)).status).toBe(200);
  });
});

describe("REST API on a real stack", () => {
  let stack: InProcessStack;
  beforeAll(async () => {
    // Its own Redis, so it can check the stored key layout under the default prefix.
    stack = await startInProcessStack({ WORKER_CONCURRENCY: "4", QUEUE_PREFIX: "slipway" }, { ownRedis: true });
  });
  afterAll(async () => stack.close());
  const api = (url: string, init?: RequestInit) => fetch(`${stack.baseUrl}${url}`, init);
  const put = (url: string, body: unknown, contentType = "application/json") =>
    api(url, { method: "PUT", headers: { "Content-Type": contentType }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const post = (url: string, body?: unknown) =>
    api(url, { method: "POST", ...(body === undefined ? {} : { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }) });

  it("concurrent builds of one app get distinct, strictly ordered release numbers; rollback makes a new release of the old build", async () => {
    const app = uniqueApp("concurrent");
    const queued = await Promise.all([1, 2, 3, 4].map(async (n) => uploadDir(stack.baseUrl, app, await sourceDir(`c${n}`, { "app.py": `print(${n})\n` }))));
    const builds = await Promise.all(queued.map((b) => waitForBuild(stack.baseUrl, b.id)));
    expect(builds.every((b) => b.status === "succeeded")).toBe(true);
    expect(builds.map((b) => b.release).sort()).toEqual([1, 2, 3, 4]);
    const releases = await json<{ version: number; buildId: string; reason: string }[]>(await api(`/v1/apps/${app}/releases`));
    expect(releases.map((r) => r.version)).toEqual([4, 3, 2, 1]);
    for (const release of releases) expect(builds.find((b) => b.id === release.buildId)?.release).toBe(release.version);

    const subscriber = stack.api.redis.duplicate();
    const events: string[] = [];
    await subscriber.subscribe(RELEASE_CHANNEL);
    subscriber.on("message", (_c, m) => events.push(m));
    const first = releases.at(-1)!;
    const rollback = await post(`/v1/apps/${app}/releases`, { version: 1 });
    expect(rollback.status).toBe(201);
    expect(await json(rollback)).toMatchObject({ version: 5, buildId: first.buildId, reason: "rollback" });
    const pointer = currentReleasePointerSchema.parse(JSON.parse(await stack.api.store.getText(storageKeys.currentRelease(app))));
    expect(pointer).toMatchObject({ version: 5, buildId: first.buildId });
    expect((await json<{ currentRelease: number }>(await api(`/v1/apps/${app}`))).currentRelease).toBe(5);

    const manual = await post(`/v1/apps/${app}/releases`, { buildId: releases[1]!.buildId });
    expect(await json(manual)).toMatchObject({ version: 6, reason: "manual" });
    // Both releases were announced before their answers came back; wait for the deliveries.
    await eventually(async () => (events.length >= 2 ? true : undefined), 10_000, "two release announcements");
    expect(events.map((e) => JSON.parse(e).version)).toEqual([5, 6]);
    await subscriber.quit();

    // Pagination: newest first, two at a time, cursor in X-Next-Cursor and Link.
    const page1 = await api(`/v1/apps/${app}/releases?limit=2`);
    expect((await json<{ version: number }[]>(page1)).map((r) => r.version)).toEqual([6, 5]);
    const cursor = page1.headers.get("x-next-cursor")!;
    expect(page1.headers.get("link")).toContain(`cursor=${cursor}`);
    const page2 = await api(`/v1/apps/${app}/releases?limit=2&cursor=${cursor}`);
    expect((await json<{ version: number }[]>(page2)).map((r) => r.version)).toEqual([4, 3]);
    const buildsPage = await api(`/v1/apps/${app}/builds?limit=3`);
    const newest = await json<BuildView[]>(buildsPage);
    expect(newest).toHaveLength(3);
    const rest = await json<BuildView[]>(await api(`/v1/apps/${app}/builds?limit=3&cursor=${buildsPage.headers.get("x-next-cursor")}`));
    expect(rest).toHaveLength(1);
    expect(new Set([...newest, ...rest].map((b) => b.id)).size).toBe(4);
    const createdAt = [...newest, ...rest].map((b) => Date.parse((b as unknown as { createdAt: string }).createdAt));
    expect(createdAt).toEqual([...createdAt].sort((a, b) => b - a));
  }, 120_000);

  it("refuses bad releases: unknown version or build 404, unfinished build 409, bad body 400, not JSON 415", async () => {
    const app = uniqueApp();
    const failed = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await sourceDir("f", { "app.py": "", "runtime.txt": "python-3.1\n" }))).id);
    expect(failed.status).toBe("failed");
    await expectError(await post(`/v1/apps/${app}/releases`, { version: 9 }), 404, "not_found");
    await expectError(await post(`/v1/apps/${app}/releases`, { buildId: randomUUID() }), 404, "not_found");
    await expectError(await post(`/v1/apps/${app}/releases`, { buildId: failed.id }), 409, "build_not_succeeded");
    await expectError(await post(`/v1/apps/${app}/releases`, { version: "one" }), 400, "invalid_body");
    await expectError(await post(`/v1/apps/${app}/releases`, {}), 400, "invalid_body");
    await expectError(await api(`/v1/apps/${app}/releases`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "version=1" }), 415, "unsupported_media_type");
    await expectError(await post(`/v1/apps/${uniqueApp()}/releases`, { version: 1 }), 404, "not_found");
  });

  it("coalesces repeated rebuilds of the same source while one is queued", async () => {
    const app = uniqueApp("coalesce");
    const first = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await sourceDir("co"))).id);
    expect(first.status).toBe("succeeded");
    await stack.worker.worker.pause();
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, () => post(`/v1/apps/${app}/rebuild`)));
      expect(answers.every((a) => a.status === 202)).toBe(true);
      const ids = await Promise.all(answers.map(async (a) => (await json<BuildView>(a)).id));
      expect(new Set(ids).size).toBe(1);
      expect(answers.filter((a) => a.headers.get("x-coalesced") === "false")).toHaveLength(1);
      const fresh = await json<BuildView>(await post(`/v1/apps/${app}/rebuild`, { noCache: true }));
      expect(fresh.id).not.toBe(ids[0]); // a no-cache rebuild is a different request
      expect(await stack.api.buildQueue.getJobCountByTypes("waiting")).toBe(2);
    } finally {
      stack.worker.worker.resume();
    }
  });

  it("deletes an app: records gone, queued builds canceled, the answer says what happens to instances", async () => {
    const app = uniqueApp("delete");
    await stack.worker.worker.pause();
    const queued = await uploadDir(stack.baseUrl, app, await sourceDir("d"));
    await stack.api.instances.report(app, { instanceId: "i-1", release: null, buildId: null, state: "running", appPath: null, lastHeartbeatAt: new Date().toISOString() });
    const response = await api(`/v1/apps/${app}`, { method: "DELETE" });
    stack.worker.worker.resume();
    expect(response.status).toBe(200);
    const body = await json<{ canceledBuilds: string[]; instances: string[]; message: string }>(response);
    expect(body).toMatchObject({ app, deleted: true, canceledBuilds: [queued.id], instances: ["i-1"] });
    expect(body.message).toMatch(/keep serving/);
    await expectError(await api(`/v1/apps/${app}`), 404, "not_found");
    await expectError(await api(`/v1/builds/${queued.id}`), 404, "not_found");
    expect((await json<{ name: string }[]>(await api("/v1/apps?limit=100"))).map((a) => a.name)).not.toContain(app);
    // Sources stay until GC.
    expect((await stack.api.store.list(storageKeys.sourcesPrefix(app))).length).toBe(1);
    await expectError(await api(`/v1/apps/${app}`, { method: "DELETE" }), 404, "not_found");
  });

  it("validates app config, JSON media type, body size, cursors and names", async () => {
    const app = uniqueApp();
    expect((await put(`/v1/apps/${app}`, { env: { A: "1" }, buildEnv: { PYTHON_VERSION: "3.11" }, startupCommand: "python app.py" })).status).toBe(201);
    expect((await put(`/v1/apps/${app}`, { env: { A: "2" } })).status).toBe(200);
    expect(await json(await api(`/v1/apps/${app}`))).toMatchObject({ env: { A: "2" }, buildEnv: { PYTHON_VERSION: "3.11" }, startupCommand: "python app.py" });
    await expectError(await put(`/v1/apps/${app}`, { unknown: 1 }), 400, "invalid_body");
    await expectError(await put(`/v1/apps/${app}`, "{broken"), 400, "invalid_json");
    await expectError(await put(`/v1/apps/${app}`, "env=1", "application/x-www-form-urlencoded"), 415, "unsupported_media_type");
    await expectError(await put(`/v1/apps/${app}`, { env: { BIG: "x".repeat(300_000) } }), 413, "payload_too_large");
    await expectError(await put("/v1/apps/Not_Valid", {}), 400, "invalid_app_name");
    await expectError(await api("/v1/apps?cursor=garbage"), 400, "invalid_cursor");
    await expectError(await api("/v1/apps?limit=0"), 400, "invalid_query");
    await expectError(await api("/v1/nothing-here"), 404, "not_found");
    const paged = await api("/v1/apps?limit=1");
    expect(await json<unknown[]>(paged)).toHaveLength(1);
    expect(paged.headers.get("x-next-cursor")).toBeTruthy();
  });

  it("malformed ids answer 400 before they reach Redis, unknown well-formed ones 404, never 500; the repositories refuse them too", async () => {
    const app = uniqueApp("ids");
    const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await sourceDir("ids"))).id);
    // Build records and their logs are slipway:build:<id> and slipway:build:<id>:log: the id `<id>:log` names the log stream.
    const alias = `${build.id}:log`;
    expect(await stack.api.redis.type(`slipway:build:${alias}`)).toBe("stream");
    for (const id of [alias, "x:log", "short", "a".repeat(65), "dot.dot.dot.", "%E2%80%8Bzero-width"]) {
      await expectError(await api(`/v1/builds/${id}`), 400, "invalid_build_id");
      await expectError(await api(`/v1/builds/${id}/logs`), 400, "invalid_build_id");
      await expectError(await api(`/v1/builds/${id}/logs`, { headers: { Accept: "text/event-stream" } }), 400, "invalid_build_id");
      await expectError(await post(`/v1/builds/${id}/cancel`), 400, "invalid_build_id");
    }
    await expectError(await post(`/v1/apps/${app}/releases`, { buildId: alias }), 400, "invalid_body");
    await expectError(await post(`/v1/apps/${app}/releases`, { version: 2 ** 60 }), 400, "invalid_id");
    await expectError(await api(`/v1/builds/${randomUUID()}`), 404, "not_found");
    await expectError(await post(`/v1/builds/${randomUUID()}/cancel`), 404, "not_found");
    await expectError(await post(`/v1/apps/${app}/releases`, { buildId: randomUUID() }), 404, "not_found");
    await expectError(await post(`/v1/apps/${app}/releases`, { version: 99 }), 404, "not_found");

    // App names become keys too (slipway:app:<name>:builds, ...).
    for (const name of [`${app}:builds`, `${app}:current-release`, "UPPER", "a"]) {
      await expectError(await api(`/v1/apps/${name}`), 400, "invalid_app_name");
      await expectError(await api(`/v1/apps/${name}/builds`), 400, "invalid_app_name");
      await expectError(await api(`/v1/apps/${name}/releases`), 400, "invalid_app_name");
      await expectError(await api(`/v1/apps/${name}/instances`), 400, "invalid_app_name");
      await expectError(await post(`/v1/apps/${name}/rebuild`), 400, "invalid_app_name");
      await expectError(await post(`/v1/apps/${name}/gc`), 400, "invalid_app_name");
      await expectError(await api(`/v1/apps/${name}`, { method: "DELETE" }), 400, "invalid_app_name");
    }

    await expect(stack.api.builds.get(alias)).rejects.toThrow(InvalidIdError);
    await expect(stack.api.buildLogs.read(alias)).rejects.toThrow(InvalidIdError);
    await expect(stack.api.apps.get(`${app}:builds`)).rejects.toThrow(InvalidIdError);
    await expect(stack.api.releases.get(app, 1.5)).rejects.toThrow(InvalidIdError);
    await expect(stack.api.releases.create(app, alias, "manual")).rejects.toThrow(InvalidIdError);
    const report = { release: null, buildId: null, state: "running" as const, appPath: null, lastHeartbeatAt: new Date().toISOString() };
    await expect(stack.api.instances.report(app, { ...report, instanceId: "a b" })).rejects.toThrow(InvalidIdError);
    expect(await stack.api.redis.type(`slipway:build:${alias}`)).toBe("stream");
  });

  it("shows an instance whose heartbeat is stale as unknown", async () => {
    const app = uniqueApp();
    await stack.api.apps.upsert(app);
    const old = new Date(Date.now() - 120_000).toISOString();
    await stack.api.instances.report(app, { instanceId: "gone", release: 1, buildId: "b", state: "running", appPath: "/x", lastHeartbeatAt: old });
    await stack.api.instances.report(app, { instanceId: "live", release: 1, buildId: "b", state: "running", appPath: "/x", lastHeartbeatAt: new Date().toISOString() });
    const instances = await json<{ instanceId: string; state: string }[]>(await api(`/v1/apps/${app}/instances`));
    expect(instances).toEqual([expect.objectContaining({ instanceId: "gone", state: "unknown" }), expect.objectContaining({ instanceId: "live", state: "running" })]);
  });

  it("serves Prometheus metrics: request durations by route and status, queue depth, build durations, releases", async () => {
    const app = uniqueApp("metrics");
    await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await sourceDir("m"))).id);
    await api(`/v1/builds/${randomUUID()}`);
    // Both are recorded after their events: the request's once its answer is sent, the build's from
    // the queue's completion event, which follows the build record's end.
    const recorded = [/slipway_http_request_duration_seconds_count\{method="GET",route="\/v1\/builds\/:id",status="404"\} \d+/, /slipway_build_duration_seconds_count\{platform="python",outcome="succeeded"\} [1-9]/];
    const text = await eventually(async () => {
      const scraped = await (await api("/metrics")).text();
      return recorded.every((pattern) => pattern.test(scraped)) ? scraped : undefined;
    }, 30_000, "the 404 and the finished build in the metrics");
    expect(text).toMatch(/slipway_http_request_duration_seconds_count\{method="POST",route="\/v1\/apps\/:app\/builds",status="202"\} \d+/);
    expect(text).toMatch(/slipway_http_request_duration_seconds_count\{method="GET",route="\/v1\/builds\/:id",status="404"\} \d+/);
    expect(text).toMatch(/slipway_build_queue_jobs\{state="waiting"\} \d+/);
    expect(text).toMatch(/slipway_build_queue_jobs\{state="active"\} \d+/);
    expect(text).toMatch(/slipway_build_queue_jobs\{state="failed"\} \d+/);
    expect(text).toMatch(/slipway_build_duration_seconds_count\{platform="python",outcome="succeeded"\} [1-9]/);
    expect(text).toMatch(/slipway_releases [1-9]/);
  });
});

describe("OpenAPI", () => {
  it("documents every mounted route, from the same schemas the routes validate with", async () => {
    const stack = await startInProcessStack({}, { worker: false });
    try {
      const document = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(await fetch(`${stack.baseUrl}/openapi.json`));
      expect(document.openapi).toBe("3.1.0");
      const { createApi } = await import("../src/app");
      const { createMetrics } = await import("../src/metrics");
      const metrics = createMetrics(stack.api);
      const app = createApi(stack.api, metrics);
      await metrics.close();
      // Walk express's own route table: every route it would serve must be in the document.
      const mounted: string[] = [];
      const walk = (stackLayers: { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[], prefix: string) => {
        for (const layer of stackLayers) {
          if (layer.route) {
            for (const method of Object.keys(layer.route.methods)) mounted.push(`${method.toUpperCase()} ${prefix}${layer.route.path}`);
          } else if (layer.handle?.stack) {
            walk(layer.handle.stack as never, prefix);
          }
        }
      };
      walk((app as unknown as { router: Router & { stack: never[] } }).router.stack, "");
      expect(mounted.length).toBeGreaterThanOrEqual(16);
      const documented = Object.entries(document.paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ":$1")}`));
      for (const routeKey of mounted) {
        // Group routers sit at the root or under /v1; either way the document must have the route.
        const [method, routePath] = routeKey.split(" ");
        const found = documented.includes(`${method} ${routePath}`) || documented.includes(`${method} /v1${routePath}`);
        expect(found, `${routeKey} is not in openapi.json`).toBe(true);
      }
      expect(documented).toHaveLength(mounted.length);
      expect(openApiDocument()).toBe(openApiDocument());
    } finally {
      await stack.close();
    }
  });
});
