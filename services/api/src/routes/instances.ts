import { Router } from "express";
import { STALE_INSTANCE_MS } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams, instanceSchema } from "../schemas";
import { requireApp } from "./lookups";

export function instanceRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();
  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app/instances",
      summary: "Each instance's state, release and last heartbeat; a stale heartbeat shows as state unknown",
      params: appParams,
      responses: {
        200: { description: "the instances", schema: instanceSchema.array() },
        404: { description: "no such app", schema: errorSchema },
      },
    },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const now = Date.now();
      const instances = (await ctx.instances.list(app.name)).map((instance) =>
        now - Date.parse(instance.lastHeartbeatAt) > STALE_INSTANCE_MS ? { ...instance, state: "unknown" as const } : instance,
      );
      res.json(instances);
    },
  );
  return router;
}
