import { Router } from "express";
import { z } from "zod";
import { followLog, logSoFar } from "../build-log-follower";
import { admitBuild, cancelBuild, presentBuild } from "../build-service";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { rebuildApp } from "../rebuild";
import { route } from "../route";
import { appParams, buildParams, buildSchema, logsQuery, pageQuery, rebuildBody } from "../schemas";
import { requireApp, requireBuild } from "./lookups";

const notFound = { 404: { description: "no such app or build", schema: errorSchema } };
const queueFull = { 429: { description: "MAX_QUEUED_BUILDS builds are waiting", schema: errorSchema } };

/** Builds: rebuilds, status, cancel and logs. */
export function buildRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/rebuild",
      summary: "Build the app's latest source again; repeated requests while one is queued get that build",
      params: appParams,
      body: { schema: rebuildBody },
      responses: {
        202: { description: "queued (or the already queued rebuild)", schema: buildSchema },
        409: { description: "the app has no source yet", schema: errorSchema },
        ...queueFull,
        ...notFound,
      },
    },
    async ({ params, body: { noCache } }, req, res) => {
      const app = await requireApp(ctx, params.app);
      if (!app.latestSourceSha256) throw errors.noSource(app.name);
      await admitBuild(ctx);
      const { build, coalesced } = await rebuildApp(ctx, app, noCache, String(req.id));
      res.status(202).location(`/v1/builds/${build.id}`).setHeader("X-Coalesced", String(coalesced)).json(presentBuild(build));
    },
  );

  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app/builds",
      summary: "An app's builds, newest first",
      params: appParams,
      query: pageQuery,
      responses: { 200: { description: "a page of builds", schema: buildSchema.array() }, ...notFound },
    },
    async ({ params, query: { limit, cursor } }, req, res) => {
      const app = await requireApp(ctx, params.app);
      const page = await ctx.builds.listForApp(app.name, limit, decodeCursor<number>(cursor, "number"));
      sendPage(req, res, page.builds.map(presentBuild), page.next);
    },
  );

  route(
    router,
    mount,
    { method: "get", path: "/builds/:id", summary: "One build", params: buildParams, responses: { 200: { description: "the build", schema: buildSchema }, ...notFound } },
    async ({ params }, _req, res) => {
      res.json(presentBuild(await requireBuild(ctx, params.id)));
    },
  );

  route(
    router,
    mount,
    {
      method: "post",
      path: "/builds/:id/cancel",
      summary: "Cancel a queued or running build: its processes are killed within seconds",
      params: buildParams,
      responses: { 202: { description: "canceled", schema: buildSchema }, 409: { description: "the build already ended", schema: errorSchema }, ...notFound },
    },
    async ({ params }, _req, res) => {
      const build = await cancelBuild(ctx, await requireBuild(ctx, params.id));
      res.status(202).json(presentBuild(build));
    },
  );

  route(
    router,
    mount,
    {
      method: "get",
      path: "/builds/:id/logs",
      summary: "The build log: text so far, or live until the build ends with Accept: text/event-stream (or ?follow=1)",
      params: buildParams,
      query: logsQuery,
      responses: {
        200: { description: "log lines (text/plain), or Server-Sent Events (text/event-stream)", schema: z.string(), contentType: "text/plain" },
        ...notFound,
      },
    },
    async ({ params, query: { follow } }, req, res) => {
      const build = await requireBuild(ctx, params.id);
      if (req.headers.accept?.includes("text/event-stream")) return followLog(ctx, build, res, "sse");
      if (follow === "1" || follow === "true") return followLog(ctx, build, res, "text");
      res.type("text/plain; charset=utf-8").send(await logSoFar(ctx, build));
    },
  );

  return router;
}
