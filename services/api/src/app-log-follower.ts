import type { Request, Response } from "express";
import type { AppLogQuery, AppLogRecord } from "@slipway/shared";
import type { ApiContext } from "./context";

/** A quiet stream sends a comment this often, so proxies and clients see the connection alive. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Server-Sent Events of an app's log: the lines `query` selects, then each new one as agents write
 * it, until the client goes. Each event's `id:` is the line's stream id, so a client that
 * reconnects with Last-Event-ID continues where it left off.
 */
export async function followAppLog(ctx: ApiContext, app: string, req: Request, res: Response, query: AppLogQuery): Promise<void> {
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("X-Accel-Buffering", "no");
  res.flushHeaders();

  // Blocking reads hold their connection: each follower gets its own.
  const blocking = ctx.redis.duplicate();
  let closed = false;
  res.on("close", () => {
    closed = true;
    blocking.disconnect();
  });
  const send = (records: AppLogRecord[]) => {
    for (const { id, ...entry } of records) res.write(`id: ${id}\ndata: ${JSON.stringify(entry)}\n\n`);
  };

  try {
    let page = await ctx.appLogs.read(app, query);
    for (;;) {
      send(page.records);
      if (closed) return;
      page = await ctx.appLogs.waitFor(blocking, app, page.cursor, KEEP_ALIVE_MS, query.instance);
      if (page.records.length === 0 && !closed) res.write(": keep-alive\n\n");
    }
  } catch (error) {
    if (!closed) {
      ctx.logger.warn({ err: error, app, requestId: req.id }, "app log follow ended early");
      res.end();
    }
  } finally {
    if (!closed) blocking.disconnect();
  }
}
