import express, { Router, type Request, type Response } from "express";
import { z } from "zod";
import { isTerminal, ObjectNotFoundError, storageKeys, type Build } from "@slipway/shared";
import { admitBuild, cancelBuild, enqueueBuild, presentBuild } from "../build-service";
import type { ApiContext } from "../context";
import { badRequest, conflict, notFound, unsupportedMediaType } from "../errors";
import { storeSourceUpload, type SourceFormat } from "../source-upload";
import { appNameParam, parseBody } from "../validation";

const rebuildSchema = z.object({ noCache: z.boolean().default(false) }).strict();

const MEDIA_TYPES: Record<string, SourceFormat> = {
  "application/gzip": "gzip",
  "application/x-gzip": "gzip",
  "application/x-tar+gzip": "gzip",
  "application/tar+gzip": "gzip",
  "application/zip": "zip",
  "application/x-zip-compressed": "zip",
};

export function buildRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post("/apps/:app/builds", async (req, res) => {
    const app = appNameParam(req.params.app);
    const mediaType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    const format = MEDIA_TYPES[mediaType];
    if (!format) {
      throw unsupportedMediaType(`send the source as application/gzip (a .tar.gz) or application/zip; got ${req.headers["content-type"] ?? "no Content-Type"}`);
    }
    const deployParam = req.query.deploy;
    if (deployParam !== undefined && deployParam !== "true" && deployParam !== "false") {
      throw badRequest("invalid_query", "deploy must be true or false");
    }
    await admitBuild(ctx);
    const source = await storeSourceUpload(req, ctx.store, app, ctx.config.MAX_SOURCE_BYTES, format);
    const build = await enqueueBuild(ctx, { app, source, deploy: deployParam !== "false", requestId: String(req.id) });
    res.status(202).location(`/v1/builds/${build.id}`).json(presentBuild(build));
  });

  router.post("/apps/:app/rebuild", express.json({ limit: "16kb" }), async (req, res) => {
    const name = appNameParam(req.params.app);
    const { noCache } = parseBody(rebuildSchema, req.body);
    const app = await ctx.apps.get(name);
    if (!app) throw notFound(`app ${name}`);
    if (!app.latestSourceSha256) throw conflict("no_source", `app ${name} has no uploaded source to rebuild`);
    await admitBuild(ctx);
    const source = { key: app.latestSourceKey ?? storageKeys.source(name, app.latestSourceSha256), sha256: app.latestSourceSha256 };
    const build = await enqueueBuild(ctx, { app: name, source, deploy: true, noCache, requestId: String(req.id) });
    res.status(202).location(`/v1/builds/${build.id}`).json(presentBuild(build));
  });

  router.get("/builds/:id", async (req, res) => {
    res.json(presentBuild(await findBuild(ctx, req.params.id)));
  });

  router.post("/builds/:id/cancel", async (req, res) => {
    const build = await cancelBuild(ctx, await findBuild(ctx, req.params.id));
    res.status(202).json(presentBuild(build));
  });

  router.get("/builds/:id/logs", async (req, res) => {
    const build = await findBuild(ctx, req.params.id);
    const wantsEvents = req.accepts(["text/plain", "text/event-stream"]) === "text/event-stream" && req.headers.accept?.includes("text/event-stream");
    if (wantsEvents) return followLog(ctx, build, req, res, "sse");
    if (req.query.follow === "1" || req.query.follow === "true") return followLog(ctx, build, req, res, "text");
    res.type("text/plain; charset=utf-8").send(await logSoFar(ctx, build));
  });

  return router;
}

async function findBuild(ctx: ApiContext, id: string | undefined): Promise<Build> {
  const build = id ? await ctx.builds.get(id) : undefined;
  if (!build) throw notFound(`build ${id}`);
  return build;
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
  if (format === "sse") {
    res.setHeader("Content-Type", "text/event-stream");
    res.setHeader("Cache-Control", "no-cache");
  } else {
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
  }
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
