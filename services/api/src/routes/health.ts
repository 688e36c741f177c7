import { Router } from "express";
import type { ApiContext } from "../context";

const withTimeout = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

export function healthRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get("/healthz", async (_req, res) => {
    const [redis, storage] = await Promise.allSettled([withTimeout(ctx.redis.ping(), 2000), withTimeout(ctx.store.ping(), 2000)]);
    const checks = {
      redis: redis.status === "fulfilled" ? "ok" : `down: ${(redis.reason as Error).message}`,
      storage: storage.status === "fulfilled" ? "ok" : `down: ${(storage.reason as Error).message}`,
    };
    const ok = redis.status === "fulfilled" && storage.status === "fulfilled";
    res.status(ok ? 200 : 503).json({ status: ok ? "ok" : "unavailable", checks });
  });
  return router;
}
