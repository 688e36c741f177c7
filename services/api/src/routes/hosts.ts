import { Router } from "express";
import { z } from "zod";
import { hostStatusSchema, INSTANCE_ID_PATTERN } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { route } from "../route";

const hostParams = z.object({ id: z.string().regex(INSTANCE_ID_PATTERN) });
const hostSchema = hostStatusSchema.openapi("Host");
const drainSchema = z.object({ id: z.string(), state: z.enum(["draining", "ready", "lost"]), message: z.string() }).openapi("HostDrain");

/** The hosts the control plane places instances on: their state, and drain / undrain. */
export function hostRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();
  const deadMs = () => ctx.config.HOST_DEAD_S * 1000;
  route(
    router,
    mount,
    { method: "get", path: "/hosts", summary: "Every host: state (ready, draining, lost), capacity, instances, last heartbeat", responses: { 200: { description: "the hosts", schema: hostSchema.array() } } },
    async (_input, _req, res) => {
      res.json(await ctx.placements.hosts(deadMs()));
    },
  );
  for (const [action, draining] of [["drain", true], ["undrain", false]] as const) {
    route(
      router,
      mount,
      {
        method: "post",
        path: `/hosts/:id/${action}`,
        summary: draining
          ? "Move every instance off the host, each serving elsewhere before the old one stops; the host takes no more until undrained"
          : "Let the host take instances again",
        params: hostParams,
        responses: { 202: { description: "accepted", schema: drainSchema }, 404: { description: "no such host", schema: errorSchema } },
      },
      async ({ params }, _req, res) => {
        if (!(await ctx.placements.setDraining(params.id, draining))) throw errors.hostNotFound(params.id);
        // The placement loop moves the instances (make-before-break); a pass now starts it at once.
        void ctx.placement.pass().catch((error: unknown) => ctx.logger.warn({ err: error }, "placement pass failed"));
        const state = (await ctx.placements.hosts(deadMs())).find((host) => host.id === params.id)?.state ?? "lost";
        ctx.logger.info({ host: params.id }, `host ${action}ed`);
        res.status(202).json({ id: params.id, state, message: draining ? "its instances move to other hosts, each serving there before it stops here" : "the host takes instances again" });
      },
    );
  }
  return router;
}
