import type { Request, Response } from "express";
import type { AppLogQuery, AppLogRecord } from "@slipway/shared";
import type { ApiContext } from "./context";
import { openLiveStream } from "./live-stream";

/** A quiet stream sends a comment this often, so proxies and clients see the connection alive. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Server-Sent Events of an app's log: the lines `query` selects, then each new one as agents write
 * it, until the client goes. Each event's `id:` is the line's stream id, so a client that
 * reconnects with Last-Event-ID continues where it left off.
 */
export async function followAppLog(ctx: ApiContext, app: string, req: Request, res: Response, query: AppLogQuery): Promise<void> {
  const stream = openLiveStream(ctx, res, "text/event-stream");
  const send = (records: AppLogRecord[]) => {
    for (const { id, ...entry } of records) res.write(`id: ${id}\ndata: ${JSON.stringify(entry)}\n\n`);
  };

  try {
    let page = await ctx.appLogs.read(app, query);
    for (;;) {
      send(page.records);
      if (stream.closed()) return;
      page = await ctx.appLogs.waitFor(stream.blocking, app, page.cursor, KEEP_ALIVE_MS, query.instance);
      if (page.records.length === 0 && !stream.closed()) res.write(": keep-alive\n\n");
    }
  } catch (error) {
    if (!stream.closed()) {
      ctx.logger.warn({ err: error, app, requestId: req.id }, "app log follow ended early");
      res.end();
    }
  } finally {
    stream.release();
  }
}
