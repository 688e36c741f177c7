import express, { Router } from "express";
import { z } from "zod";
import { matchResources } from "@slipway/shared";
import { admitBuild, enqueueBuild, presentBuild } from "../build-service";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams, buildSchema, resourceMatchBody, resourceMatchSchema, uploadQuery } from "../schemas";
import { assembleSource } from "../source-assembly";
import { storeSourceUpload, type SourceFormat } from "../source-upload";

const MEDIA_TYPES: Record<string, SourceFormat> = {
  "application/gzip": "gzip",
  "application/x-gzip": "gzip",
  "application/x-tar+gzip": "gzip",
  "application/tar+gzip": "gzip",
  "application/zip": "zip",
  "application/x-zip-compressed": "zip",
};

/** Sources in: uploads (whole, or only the files the server lacks) that start a build. */
export function sourceRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/builds",
      summary: "Upload a source (tar.gz or zip) and build it; the app is created on its first build",
      params: appParams,
      query: uploadQuery,
      rawBody: { contentType: "application/gzip", schema: z.string().openapi({ format: "binary" }) },
      responses: {
        202: { description: "queued; Location names the build", schema: buildSchema },
        409: { description: "resource_missing (with ?resources=1): a listed file the server no longer holds, or whose cached copy failed its sha256 check and was discarded; upload it", schema: errorSchema },
        413: { description: "larger than MAX_SOURCE_BYTES", schema: errorSchema },
        415: { description: "not application/gzip or application/zip", schema: errorSchema },
        429: { description: "MAX_QUEUED_BUILDS builds are waiting", schema: errorSchema },
      },
    },
    async ({ params: { app }, query: { deploy, resources } }, req, res) => {
      const mediaType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      const format = MEDIA_TYPES[mediaType];
      if (!format) throw errors.archiveRequired(req.headers["content-type"]);
      await admitBuild(ctx);
      const source = resources
        ? await assembleSource(req, ctx.store, app, ctx.config.MAX_SOURCE_BYTES)
        : await storeSourceUpload(req, ctx.store, app, ctx.config.MAX_SOURCE_BYTES, format);
      const build = await enqueueBuild(ctx, { app, source, deploy: deploy !== "false", requestId: String(req.id) });
      res.status(202).location(`/v1/builds/${build.id}`).json(presentBuild(build));
    },
  );

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/resources/match",
      summary: "Which of these file digests the server already holds for the app (so a deploy uploads only the rest)",
      params: appParams,
      // Up to 200,000 digests: larger than other JSON bodies may be.
      body: { schema: resourceMatchBody, parser: express.json({ limit: "16mb" }) },
      responses: { 200: { description: "the digests held", schema: resourceMatchSchema } },
    },
    async ({ params: { app }, body: { resources } }, _req, res) => {
      res.json({ held: [...(await matchResources(ctx.store, app, resources))] });
    },
  );

  return router;
}
