import { Router } from "express";
import { z } from "zod";
import { MAX_APP_INSTANCES } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams } from "../schemas";
import { requireApp } from "./lookups";

const scaleBody = z.object({ instances: z.number().int().min(0).max(MAX_APP_INSTANCES) }).strict().openapi("ScaleRequest");
export const scaleSchema = z
  .object({
    app: z.string(),
    /** The instances asked for. */
    instances: z.number().int(),
    /** The instances placed on hosts now; fewer than asked when the hosts lack room. */
    placed: z.number().int(),
    message: z.string().optional(),
  })
  .openapi("Scale");

/** How many instances an app runs: `PUT` sets it (0 stops the app) and places them at once. */
export function scaleRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();
  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app/scale",
      summary: "The instances asked for and how many are placed on hosts",
      params: appParams,
      responses: { 200: { description: "the app's scale", schema: scaleSchema }, 404: { description: "no such app", schema: errorSchema } },
    },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      res.json(view(app.name, await ctx.placements.scaleOf(app.name, ctx.config.DEFAULT_INSTANCES)));
    },
  );
  route(
    router,
    mount,
    {
      method: "put",
      path: "/apps/:app/scale",
      summary: "Run this many instances of the app (0 stops it); they are placed on ready hosts, spread first, then least loaded",
      params: appParams,
      body: { schema: scaleBody },
      responses: { 200: { description: "placed", schema: scaleSchema }, 404: { description: "no such app", schema: errorSchema } },
    },
    async ({ params, body }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const scale = await ctx.placement.place(app.name, { desired: body.instances });
      ctx.logger.info({ app: app.name, ...scale }, "app scaled");
      res.json(view(app.name, scale));
    },
  );
  return router;
}

function view(app: string, { desired, placed }: { desired: number; placed: number }): z.infer<typeof scaleSchema> {
  return {
    app,
    instances: desired,
    placed,
    ...(placed < desired ? { message: `only ${placed} of ${desired} instances could be placed: the ready hosts have no room for more` } : {}),
  };
}
