import { Router } from "express";
import { z } from "zod";
import { APP_LOG_ID_PATTERN, appLogEntrySchema, formatAppLogLine, INSTANCE_ID_PATTERN, type AppLogSince } from "@slipway/shared";
import { followAppLog } from "../app-log-follower";
import type { ApiContext } from "../context";
import { errors } from "../errors";
import { errorSchema } from "../openapi";
import { route } from "../route";
import { appParams } from "../schemas";
import { requireApp } from "./lookups";

const isIsoTime = (value: string) => /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) && !Number.isNaN(Date.parse(value));

const appLogsQuery = z.object({
  instance: z.string().regex(INSTANCE_ID_PATTERN, "must be an instance id").optional(),
  since: z
    .string()
    .refine((value) => isIsoTime(value) || APP_LOG_ID_PATTERN.test(value), "must be an ISO time (lines from then on) or a log line id (lines after it)")
    .optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(500),
});

const appLogEntryResponseSchema = appLogEntrySchema.openapi("AppLogLine");

function parseSince(since: string | undefined): AppLogSince | undefined {
  if (since === undefined) return undefined;
  return APP_LOG_ID_PATTERN.test(since) ? { afterId: since } : { fromMs: Date.parse(since) };
}

/** An SSE client reconnecting says where it was; that wins over `since`. */
function lastEventId(header: string | undefined): AppLogSince | undefined {
  if (header === undefined) return undefined;
  if (!APP_LOG_ID_PATTERN.test(header)) throw errors.invalidHeader("Last-Event-ID", "must be an id of an earlier event");
  return { afterId: header };
}

/** The app's own output from every instance, with its agents' lifecycle lines. */
export function appLogRoutes(ctx: ApiContext, mount: string): Router {
  const router = Router();
  route(
    router,
    mount,
    {
      method: "get",
      path: "/apps/:app/logs",
      summary:
        "The app's stdout, stderr and lifecycle (system) lines from every instance: the newest `limit` (or the first `limit` after `since`) as text/plain or application/json; Accept: text/event-stream follows live, resumable with Last-Event-ID",
      params: appParams,
      query: appLogsQuery,
      responses: {
        200: {
          description: "`<time> <instanceId> <stream>: <line>` lines (text/plain, the default), an array (application/json), or events whose data is one line's JSON (text/event-stream)",
          schema: appLogEntryResponseSchema.array(),
        },
        404: { description: "no such app", schema: errorSchema },
      },
    },
    async ({ params, query }, req, res) => {
      const app = await requireApp(ctx, params.app);
      const since = lastEventId(req.header("last-event-id")) ?? parseSince(query.since);
      const selection = { limit: query.limit, ...(query.instance ? { instance: query.instance } : {}), ...(since ? { since } : {}) };
      const format = req.accepts(["text/plain", "application/json", "text/event-stream"]);
      if (format === "text/event-stream") return followAppLog(ctx, app.name, req, res, selection);
      const { records } = await ctx.appLogs.read(app.name, selection);
      if (format === "application/json") return res.json(records.map(({ id: _id, ...entry }) => entry));
      res.type("text/plain; charset=utf-8").send(records.map((record) => `${formatAppLogLine(record)}\n`).join(""));
    },
  );
  return router;
}
