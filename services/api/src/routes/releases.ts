import { Router } from "express";
import { announceRelease } from "@slipway/shared";
import type { ApiContext } from "../context";
import { conflict, notFound } from "../errors";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { route } from "../route";
import { appParams, pageQuery, releaseBody, releaseSchema } from "../schemas";
import { appNameParam, jsonBody, parseBody, parseQuery } from "../validation";
import { requireApp } from "./lookups";

const errors = {
  400: { description: "bad input", schema: errorSchema },
  401: { description: "missing or wrong bearer token", schema: errorSchema },
  404: { description: "no such app, build or release", schema: errorSchema },
};

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
      responses: { 200: { description: "a page of releases", schema: releaseSchema.array() }, ...errors },
    },
    async (req, res) => {
      const app = await requireApp(ctx, appNameParam(req.params.app));
      const { limit, cursor } = parseQuery(pageQuery, req.query);
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
      body: { contentType: "application/json", schema: releaseBody },
      responses: {
        201: { description: "the new release", schema: releaseSchema },
        409: { description: "the build has not succeeded, or its artifact was collected", schema: errorSchema },
        415: { description: "not JSON", schema: errorSchema },
        ...errors,
      },
    },
    jsonBody,
    async (req, res) => {
      const app = await requireApp(ctx, appNameParam(req.params.app));
      const body = parseBody(releaseBody, req.body);
      let buildId: string;
      let reason: "manual" | "rollback";
      if ("version" in body) {
        const target = await ctx.releases.get(app.name, body.version);
        if (!target) throw notFound(`release v${body.version} of ${app.name}`);
        buildId = target.buildId;
        reason = "rollback";
      } else {
        buildId = body.buildId;
        reason = "manual";
      }
      const build = await ctx.builds.get(buildId);
      if (!build || build.app !== app.name) throw notFound(`build ${buildId} of ${app.name}`);
      if (build.status !== "succeeded" || !build.artifact) throw conflict("build_not_succeeded", `build ${buildId} is ${build.status}; only a succeeded build can be released`);
      if (!(await ctx.store.exists(build.artifact.key))) {
        throw conflict("artifact_collected", `build ${buildId}'s artifact was garbage-collected; rebuild its source instead`);
      }
      const { release } = (await ctx.releases.create(app.name, buildId, reason))!;
      await announceRelease(ctx, app.name, release, build.artifact.sha256);
      ctx.logger.info({ app: app.name, version: release.version, buildId, reason, requestId: req.id }, "release created");
      res.status(201).json(release);
    },
  );

  return router;
}
