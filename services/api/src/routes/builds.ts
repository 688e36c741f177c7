import express, { Router, type Request, type Response } from "express";
import { z } from "zod";
import { isTerminal, matchResources, ObjectNotFoundError, storageKeys, type Build } from "@slipway/shared";
import { admitBuild, cancelBuild, enqueueBuild, presentBuild, rebuildApp } from "../build-service";
import type { ApiContext } from "../context";
import { conflict, unsupportedMediaType } from "../errors";
import { errorSchema } from "../openapi";
import { decodeCursor, sendPage } from "../pagination";
import { route } from "../route";
import { appParams, buildParams, buildSchema, logsQuery, pageQuery, rebuildBody, resourceMatchBody, resourceMatchSchema, uploadQuery } from "../schemas";
import { assembleSource } from "../source-assembly";
import { storeSourceUpload, type SourceFormat } from "../source-upload";
import { appNameParam, jsonBody, parseBody, parseQuery } from "../validation";
import { requireApp, requireBuild } from "./lookups";

const MEDIA_TYPES: Record<string, SourceFormat> = {
  "application/gzip": "gzip",
  "application/x-gzip": "gzip",
  "application/x-tar+gzip": "gzip",
  "application/tar+gzip": "gzip",
  "application/zip": "zip",
  "application/x-zip-compressed": "zip",
};

const errors = {
  400: { description: "bad input", schema: errorSchema },
  401: { description: "missing or wrong bearer token", schema: errorSchema },
};
const notFound = { 404: { description: "no such app or build", schema: errorSchema } };

/** Builds: uploads, rebuilds, status, cancel and logs. */
export function buildRoutes(ctx: ApiContext, mount: string): Router {
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
      body: { contentType: "application/gzip", schema: z.string().openapi({ format: "binary" }) },
      responses: {
        202: { description: "queued; Location names the build", schema: buildSchema },
        409: { description: "resource_missing (with ?resources=1): a listed file the server no longer holds, or whose cached copy failed its sha256 check and was discarded; upload it", schema: errorSchema },
        413: { description: "larger than MAX_SOURCE_BYTES", schema: errorSchema },
        415: { description: "not application/gzip or application/zip", schema: errorSchema },
        429: { description: "MAX_QUEUED_BUILDS builds are waiting", schema: errorSchema },
        ...errors,
      },
    },
    async (req, res) => {
      const app = appNameParam(req.params.app);
      const mediaType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      const format = MEDIA_TYPES[mediaType];
      if (!format) {
        throw unsupportedMediaType(`send the source as application/gzip (a .tar.gz) or application/zip; got ${req.headers["content-type"] ?? "no Content-Type"}`);
      }
      const { deploy, resources } = parseQuery(uploadQuery, req.query);
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
      body: { contentType: "application/json", schema: resourceMatchBody },
      responses: { 200: { description: "the digests held", schema: resourceMatchSchema }, ...errors },
    },
    express.json({ limit: "16mb" }),
    async (req, res) => {
      const app = appNameParam(req.params.app);
      const { resources } = parseBody(resourceMatchBody, req.body);
      res.json({ held: [...(await matchResources(ctx.store, app, resources))] });
    },
  );

  route(
    router,
    mount,
    {
      method: "post",
      path: "/apps/:app/rebuild",
      summary: "Build the app's latest source again; repeated requests while one is queued get that build",
      params: appParams,
      body: { contentType: "application/json", schema: rebuildBody },
      responses: {
        202: { description: "queued (or the already queued rebuild)", schema: buildSchema },
        409: { description: "the app has no source yet", schema: errorSchema },
        429: { description: "MAX_QUEUED_BUILDS builds are waiting", schema: errorSchema },
        ...notFound,
        ...errors,
      },
    },
    jsonBody,
    async (req, res) => {
      const { noCache } = parseBody(rebuildBody, req.body);
      const app = await requireApp(ctx, appNameParam(req.params.app));
      if (!app.latestSourceSha256) throw conflict("no_source", `app ${app.name} has no uploaded source to rebuild`);
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
      responses: { 200: { description: "a page of builds", schema: buildSchema.array() }, ...notFound, ...errors },
    },
    async (req, res) => {
      const app = await requireApp(ctx, appNameParam(req.params.app));
      const { limit, cursor } = parseQuery(pageQuery, req.query);
      const page = await ctx.builds.listForApp(app.name, limit, decodeCursor<number>(cursor, "number"));
      sendPage(req, res, page.builds.map(presentBuild), page.next);
    },
  );

  route(
    router,
    mount,
    { method: "get", path: "/builds/:id", summary: "One build", params: buildParams, responses: { 200: { description: "the build", schema: buildSchema }, ...notFound, ...errors } },
    async (req, res) => {
      res.json(presentBuild(await requireBuild(ctx, req.params.id)));
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
      responses: { 202: { description: "canceled", schema: buildSchema }, 409: { description: "the build already ended", schema: errorSchema }, ...notFound, ...errors },
    },
    async (req, res) => {
      const build = await cancelBuild(ctx, await requireBuild(ctx, req.params.id));
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
        ...errors,
      },
    },
    async (req, res) => {
      const build = await requireBuild(ctx, req.params.id);
      const { follow } = parseQuery(logsQuery, req.query);
      if (req.headers.accept?.includes("text/event-stream")) return followLog(ctx, build, req, res, "sse");
      if (follow === "1" || follow === "true") return followLog(ctx, build, req, res, "text");
      res.type("text/plain; charset=utf-8").send(await logSoFar(ctx, build));
    },
  );

  return router;
}

/** The live stream while it exists; after it expires, the complete log kept in storage. */
async function logSoFar(ctx: ApiContext, build: Build): Promise<string> {
  if (await ctx.buildLogs.exists(build.id)) {
    const { lines } = await ctx.buildLogs.read(build.id);
    return lines.map((line) => `${line}\n`).join("");
  }
  try {
    return await ctx.store.getText(storageKeys.buildLog(build.app, build.id));
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return "";
    throw error;
  }
}

/** Streams the log as it grows, as Server-Sent Events or plain chunked text, until the build ends. */
async function followLog(ctx: ApiContext, build: Build, req: Request, res: Response, format: "sse" | "text") {
  res.status(200);
  res.setHeader("Content-Type", format === "sse" ? "text/event-stream" : "text/plain; charset=utf-8");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("X-Accel-Buffering", "no");
  res.flushHeaders();

  const blocking = ctx.redis.duplicate();
  let closed = false;
  req.on("close", () => {
    closed = true;
    blocking.disconnect();
  });
  const writeLines = (lines: string[]) => {
    for (const line of lines) res.write(format === "sse" ? `data: ${line}\n\n` : `${line}\n`);
  };
  const finish = (status: string) => {
    if (format === "sse") res.write(`event: end\ndata: ${status}\n\n`);
    res.end();
  };

  try {
    if (!(await ctx.buildLogs.exists(build.id)) && isTerminal(build.status)) {
      writeLines((await logSoFar(ctx, build)).split("\n").filter(Boolean));
      return finish(build.status);
    }
    let chunk = await ctx.buildLogs.read(build.id);
    for (;;) {
      writeLines(chunk.lines);
      if (chunk.ended) return finish(chunk.ended);
      if (closed) return;
      chunk = await ctx.buildLogs.waitFor(blocking, build.id, chunk.cursor, 5000);
      if (chunk.lines.length === 0 && !chunk.ended) {
        // Five quiet seconds: a build that ended without an end marker (its worker died after a
        // cancel, or the stream expired) must not keep followers waiting for ever.
        const current = await ctx.builds.get(build.id);
        if (current && isTerminal(current.status)) return finish(current.status);
        if (format === "sse") res.write(": keep-alive\n\n");
      }
    }
  } catch (error) {
    if (!closed) {
      ctx.logger.warn({ err: error, buildId: build.id }, "log follow ended early");
      res.end();
    }
  } finally {
    if (!closed) blocking.disconnect();
  }
}
