import { Router } from "express";
import { collectGarbage } from "@slipway/shared";
import type { ApiContext } from "../context";
import { deleteApp } from "../app-service";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { route } from "../route";
import { appConfigBody, appParams, appSchema, deletedAppSchema, gcReportSchema, pageQuery } from "../schemas";
import { requireApp } from "./lookups";

const noSuchApp = { 404: { description: "no such app", schema: errorSchema } };

/** App records: config (env, buildEnv, startupCommand), listing and deletion. */
export function appRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();

  route(
    router,
    mount,
    { method: "get", path: "/apps", summary: "List apps by name", query: pageQuery, responses: { 200: { description: "a page of apps", schema: appSchema.array() } } },
    async ({ query: { limit, cursor } }, req, res) => {
      const apps = await ctx.apps.list(limit + 1, decodeCursor<string>(cursor, "string"));
      const page = apps.slice(0, limit);
      sendPage(req, res, page, apps.length > limit ? page.at(-1)!.name : undefined);
    },
  );

  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app",
      summary: "One app, with its current release",
      params: appParams,
      responses: { 200: { description: "the app", schema: appSchema }, ...noSuchApp },
    },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const current = await ctx.releases.current(app.name);
      res.json({ ...app, currentRelease: current?.version ?? null });
    },
  );

  route(
    router,
    mount,
    {
      method: "put",
      path: "/apps/:app",
      summary: "Create an app or change its config: env reaches the running app, buildEnv the build",
      params: appParams,
      body: { schema: appConfigBody },
      responses: {
        200: { description: "updated", schema: appSchema },
        201: { description: "created", schema: appSchema },
        413: { description: "body too large", schema: errorSchema },
        415: { description: "not JSON", schema: errorSchema },
      },
    },
    async ({ params, body }, _req, res) => {
      const { app, created } = await ctx.apps.upsert(params.app, body);
      res.status(created ? 201 : 200).json(app);
    },
  );

  route(
    router,
    mount,
    {
      method: "delete",
      path: "/apps/:app",
      summary: "Delete an app's records; its queued and running builds are canceled; artifacts stay until GC; running instances keep serving until stopped",
      params: appParams,
      responses: { 200: { description: "deleted", schema: deletedAppSchema }, ...noSuchApp },
    },
    async ({ params }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      res.json(await deleteApp(ctx, app.name));
    },
  );

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/gc",
      summary: "Collect the app's old artifacts and sources now (also done on a schedule by the workers)",
      params: appParams,
      responses: { 200: { description: "what was deleted and kept", schema: gcReportSchema }, ...noSuchApp },
    },
    async ({ params }, req, res) => {
      const app = await requireApp(ctx, params.app);
      const report = await collectGarbage(ctx, app.name, app.retention ?? ctx.config.GC_RETAIN);
      ctx.logger.info({ app: app.name, deletedBuilds: report.deletedBuilds.length, deletedSources: report.deletedSources.length, requestId: req.id }, "garbage collected");
      res.json(report);
    },
  );

  return router;
}
