import { randomUUID } from "node:crypto";
import express, { Router, type RequestHandler } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, type ApiConfig } from "@slipway/shared";
import { json, listen } from "../../../test/harness/http";
import { createApi } from "../src/app";
import type { ApiContext } from "../src/context";
import { errorHandler } from "../src/error-handler";
import { errors } from "../src/errors";
import type { ApiMetrics } from "../src/metrics";
import { openApiDocument } from "../src/openapi";
import { route } from "../src/route";
import { appParams, buildParams, pageQuery, rebuildBody } from "../src/schemas";

const logger = createLogger("contract-test", "silent");
const catalogueCodes = [...new Set(Object.values(errors).map((factory) => factory.code))];

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, unknown>; operationId?: string; security?: unknown[] }>>;
  servers?: { url: string }[];
  security?: unknown[];
  components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } };
  "x-error-codes": { code: string; status: number }[];
}

describe("the OpenAPI document", () => {
  // Building the app mounts (and so documents) every route; nothing here reaches Redis or storage.
  const ctx = { logger, config: { API_TOKEN: "t" } as ApiConfig } as ApiContext;
  const metrics = { middleware: ((_req, _res, next) => next()) as RequestHandler } as ApiMetrics;
  createApi(ctx, metrics);
  const document = openApiDocument() as OpenApiDocument;

  it("lists every code of the error catalogue, with its status", () => {
    expect(catalogueCodes.length).toBeGreaterThanOrEqual(20);
    expect([...document.components.schemas.Error.properties.error.properties.code.enum].sort()).toEqual([...catalogueCodes].sort());
    for (const factory of Object.values(errors)) expect(document["x-error-codes"]).toContainEqual({ code: factory.code, status: factory.status });
  });

  it("names every operation once, says where it is served, and marks the open routes as needing no token", () => {
    const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(document.paths["/v1/apps/{app}/builds"]?.get?.operationId).toBe("getAppsByAppBuilds");
    expect(document.servers?.length).toBeGreaterThan(0);
    expect(document.security).toEqual([{ bearer: [] }]);
    for (const open of ["/healthz", "/metrics", "/openapi.json"]) {
      expect(document.paths[open]?.get?.security, open).toEqual([]);
    }
    expect(document.paths["/v1/apps"]?.get?.security).toEqual([{ bearer: [] }]);
  });

  it("gives every route the standard errors and keeps the route-specific ones", () => {
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        expect(operation.responses, `${method} ${path}`).toHaveProperty("500");
        if (path.startsWith("/v1/")) expect(operation.responses, `${method} ${path}`).toHaveProperty("401");
        if (path.includes("{")) expect(operation.responses, `${method} ${path}`).toHaveProperty("400");
      }
    }
    expect(document.paths["/v1/apps/{app}"]!.put!.responses).toHaveProperty("415");
    expect(document.paths["/v1/builds/{id}/cancel"]!.post!.responses).toHaveProperty("409");
  });
});

describe("route()", () => {
  const reached: unknown[] = [];
  let base: string;
  let close: () => Promise<void>;
  const mount = `/contract-${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    const router = Router();
    route(router, mount, { method: "get", path: "/apps/:app", summary: "test", params: appParams, query: pageQuery, responses: {} }, ({ params, query }, _req, res) => {
      reached.push({ params, query });
      res.json({ params, query });
    });
    route(router, mount, { method: "post", path: "/builds/:id", summary: "test", params: buildParams, body: { schema: rebuildBody }, responses: {} }, ({ body }, _req, res) => {
      reached.push(body);
      res.json(body);
    });
    const app = express();
    app.use(mount, router);
    app.use(errorHandler(logger));
    const server = await listen(app);
    base = `${server.url}${mount}`;
    close = server.close;
  });
  afterAll(async () => close());

  const expectError = async (response: Response, status: number, code: string) => {
    expect(response.status).toBe(status);
    expect((await json<{ error: { code: string } }>(response)).error.code).toBe(code);
  };

  it("answers invalid params, query and body with the catalogue's 400s before the handler runs", async () => {
    await expectError(await fetch(`${base}/apps/Not_Valid`), 400, errors.invalidAppName.code);
    await expectError(await fetch(`${base}/apps/good-app?limit=0`), 400, errors.invalidQuery.code);
    await expectError(await fetch(`${base}/apps/good-app?limit=many`), 400, "invalid_query");
    await expectError(await fetch(`${base}/builds/short`, { method: "POST" }), 400, errors.invalidBuildId.code);
    const post = (body: string, contentType = "application/json") => fetch(`${base}/builds/${randomUUID()}`, { method: "POST", headers: { "Content-Type": contentType }, body });
    await expectError(await post(JSON.stringify({ noCache: "yes" })), 400, errors.invalidBody.code);
    await expectError(await post("{broken"), 400, errors.invalidJson.code);
    await expectError(await post("noCache=1", "text/plain"), 415, errors.jsonRequired.code);
    expect(reached).toEqual([]);
  });

  it("hands the handler the parsed input, defaults applied", async () => {
    expect(await json(await fetch(`${base}/apps/good-app?limit=5`))).toEqual({ params: { app: "good-app" }, query: { limit: 5 } });
    expect(await json(await fetch(`${base}/apps/good-app`))).toEqual({ params: { app: "good-app" }, query: { limit: 20 } });
    expect(await json(await fetch(`${base}/builds/${randomUUID()}`, { method: "POST" }))).toEqual({ noCache: false });
    expect(reached).toHaveLength(3);
  });

  it("refuses to mount a path parameter that has no error in the catalogue", () => {
    expect(() => route(Router(), mount, { method: "get", path: "/things/:thing", summary: "test", params: appParams.extend({ thing: appParams.shape.app }), responses: {} }, () => undefined)).toThrow(
      /:thing has no error in the catalogue/,
    );
  });
});
