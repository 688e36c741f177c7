import { Router } from "express";
import { announceRelease } from "@slipway/shared";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { route } from "../route";
import { appParams, pageQuery, releaseBody, releaseSchema } from "../schemas";
import { requireApp } from "./lookups";

const notFound = { 404: { description: "no such app, build or release", schema: errorSchema } };

/** Releases: the numbered history of what an app runs, deploys of a chosen build, and rollbacks. */
export function releaseRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();

  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app/releases",
      summary: "An app's releases, newest first",
      params: appParams,
      query: pageQuery,
      responses: { 200: { description: "a page of releases", schema: releaseSchema.array() }, ...notFound },
    },
    async ({ params, query: { limit, cursor } }, req, res) => {
      const app = await requireApp(ctx, params.app);
      const releases = await ctx.releases.list(app.name, limit + 1, decodeCursor<number>(cursor, "number"));
      const page = releases.slice(0, limit);
      sendPage(req, res, page, releases.length > limit ? page.at(-1)!.version : undefined);
    },
  );

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/releases",
      summary: "Release a chosen build ({buildId}), or roll back to an earlier release ({version}): a new release, instances notified",
      params: appParams,
      body: { schema: releaseBody },
      responses: {
        201: { description: "the new release", schema: releaseSchema },
        409: { description: "the build has not succeeded, or its artifact was collected", schema: errorSchema },
        415: { description: "not JSON", schema: errorSchema },
        ...notFound,
      },
    },
    async ({ params, body }, req, res) => {
      const app = await requireApp(ctx, params.app);
      let buildId: string;
      let reason: "manual" | "rollback";
      if ("version" in body) {
        const target = await ctx.releases.get(app.name, body.version);
        if (!target) throw errors.releaseNotFound(app.name, body.version);
        buildId = target.buildId;
        reason = "rollback";
      } else {
        buildId = body.buildId;
        reason = "manual";
      }
      const build = await ctx.builds.get(buildId);
      if (!build || build.app !== app.name) throw errors.appBuildNotFound(app.name, buildId);
      if (build.status !== "succeeded" || !build.artifact) throw errors.buildNotSucceeded(buildId, build.status);
      if (!(await ctx.store.exists(build.artifact.key))) throw errors.artifactCollected(buildId);
      const { release } = (await ctx.releases.create(app.name, buildId, reason))!;
      await announceRelease(ctx, app.name, release, build.artifact.sha256);
      ctx.logger.info({ app: app.name, version: release.version, buildId, reason, requestId: req.id }, "release created");
      res.status(201).json(release);
    },
  );

  return router;
}
