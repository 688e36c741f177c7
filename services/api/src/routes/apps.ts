import { Router } from "express";
import { appUrl, collectGarbage } from "@slipway/shared";
import type { ApiContext } from "../context";
import { deleteApp } from "../app-service";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { route } from "../route";
import { appView, releaseConfigChange } from "../app-config";
import { errors } from "../errors";
import { appConfigBody, appParams, appSchema, deletedAppSchema, envPatchBody, gcReportSchema, pageQuery, revealed, revealQuery } from "../schemas";
import { requireApp } from "./lookups";

const noSuchApp = { 404: { description: "no such app", schema: errorSchema } };

/**
 * App records: config (env, buildEnv, startupCommand, healthCheck), listing and deletion. A change
 * to what the app's processes start with releases the current build again (reason `config`).
 * Answers mask secret-looking env values unless `?reveal=1`.
 */
export function appRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();

  route(
    router,
    mount,
    { method: "get", path: "/apps", summary: "List apps by name", query: pageQuery.merge(revealQuery), responses: { 200: { description: "a page of apps", schema: appSchema.array() } } },
    async ({ query }, req, res) => {
      const apps = await ctx.apps.list(query.limit + 1, decodeCursor<string>(query.cursor, "string"));
      const page = apps.slice(0, query.limit).map((app) => appView({ ...app, url: appUrl(ctx.config, app.name) }, revealed(query)));
      sendPage(req, res, page, apps.length > query.limit ? page.at(-1)!.name : undefined);
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
      query: revealQuery,
      responses: { 200: { description: "the app", schema: appSchema }, ...noSuchApp },
    },
    async ({ params, query }, _req, res) => {
      const app = await requireApp(ctx, params.app);
      const [current, scale] = await Promise.all([ctx.releases.current(app.name), ctx.placements.scaleOf(app.name, ctx.config.DEFAULT_INSTANCES)]);
      res.json(appView({ ...app, currentRelease: current?.version ?? null, instances: scale.desired, placed: scale.placed, url: appUrl(ctx.config, app.name) }, revealed(query)));
    },
  );

  route(
    router,
    mount,
    {
      method: "put",
      path: "/apps/:app",
      summary: "Create an app or replace the given settings: a change of env, startupCommand or healthCheck makes a config release; buildEnv reaches the next build, releaseCommand the next release",
      params: appParams,
      query: revealQuery,
      body: { schema: appConfigBody },
      responses: {
        200: { description: "updated", schema: appSchema },
        201: { description: "created", schema: appSchema },
        413: { description: "body too large", schema: errorSchema },
        415: { description: "not JSON", schema: errorSchema },
      },
    },
    async ({ params, query, body }, req, res) => {
      const { app, created, previous } = await ctx.apps.upsert(params.app, body);
      await releaseConfigChange(ctx, previous, app, req.id);
      if (created || previous?.affinity !== app.affinity) await ctx.instances.announce(app.name);
      res.status(created ? 201 : 200).json(appView(app, revealed(query)));
    },
  );

  route(
    router,
    mount,
    {
      method: "patch",
      path: "/apps/:app/config",
      summary: "Set and unset env variables in one atomic step; a change makes a config release",
      params: appParams,
      query: revealQuery,
      body: { schema: envPatchBody },
      responses: {
        200: { description: "the app as changed", schema: appSchema },
        415: { description: "not JSON", schema: errorSchema },
        ...noSuchApp,
      },
    },
    async ({ params, query, body }, req, res) => {
      const patched = await ctx.apps.patchEnv(params.app, body.set ?? {}, body.unset ?? []);
      if (!patched) throw errors.appNotFound(params.app);
      await releaseConfigChange(ctx, patched.previous, patched.app, req.id);
      res.json(appView(patched.app, revealed(query)));
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
      const report = await collectGarbage(ctx, app.name, app.retention ?? ctx.config.GC_RETAIN, ctx.config.GC_SOURCE_GRACE_S * 1000);
      ctx.logger.info({ app: app.name, deletedBuilds: report.deletedBuilds.length, deletedSources: report.deletedSources.length, requestId: req.id }, "garbage collected");
      res.json(report);
    },
  );

  return router;
}
