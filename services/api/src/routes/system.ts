import { Router } from "express";
import { z } from "zod";
import type { ApiContext } from "../context";
import type { ApiMetrics } from "../metrics";
import { openApiDocument } from "../openapi";
import { route } from "../route";

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

const healthSchema = z.object({ status: z.enum(["ok", "unavailable"]), checks: z.object({ redis: z.string(), storage: z.string() }) }).openapi("Health");

/** Health, metrics and the API's own description: open even when API_TOKEN is set. */
export function systemRoutes(ctx: ApiContext, metrics: ApiMetrics): Router {
  const router = Router();

  route(
    router,
    "",
    {
      method: "get",
      path: "/healthz",
      summary: "200 when Redis and storage answer, else 503",
      open: true,
      responses: { 200: { description: "healthy", schema: healthSchema }, 503: { description: "a dependency is down", schema: healthSchema } },
    },
    async (_input, _req, res) => {
      const [redis, storage] = await Promise.allSettled([withTimeout(ctx.redis.ping(), 2000), withTimeout(ctx.store.ping(), 2000)]);
      const checks = {
        redis: redis.status === "fulfilled" ? "ok" : `down: ${(redis.reason as Error).message}`,
        storage: storage.status === "fulfilled" ? "ok" : `down: ${(storage.reason as Error).message}`,
      };
      const ok = redis.status === "fulfilled" && storage.status === "fulfilled";
      res.status(ok ? 200 : 503).json({ status: ok ? "ok" : "unavailable", checks });
    },
  );

  route(
    router,
    "",
    { method: "get", path: "/metrics", summary: "Prometheus metrics", open: true, responses: { 200: { description: "Prometheus text format", schema: z.string(), contentType: "text/plain" } } },
    async (_input, _req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );

  route(
    router,
    "",
    { method: "get", path: "/openapi.json", summary: "This API's OpenAPI 3.1 document", open: true, responses: { 200: { description: "OpenAPI document", schema: z.object({}).passthrough() } } },
    (_input, _req, res) => {
      res.json(openApiDocument());
    },
  );
  return router;
}
