import type { Response } from "express";
import type { Redis } from "ioredis";
import { isTerminal, ObjectNotFoundError, storageKeys, type Build } from "@slipway/shared";
import type { ApiContext } from "./context";
import { openLiveStream } from "./live-stream";

/** The live stream while it exists; after it expires, the complete log kept in storage. */
export async function logSoFar(ctx: ApiContext, build: Build): Promise<string> {
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

/** Where a followed log goes: its lines, and a note of every quiet spell. */
export interface LogSink {
  write(lines: string[]): void;
  quiet(): void;
  /** Whether the reader went away: the follow stops at its next wait. */
  closed(): boolean;
}

/**
 * Feeds the log to `sink` as it grows until the build ends; answers its final status (nothing when
 * the reader went away first). `blocking` must be a connection of the caller's own.
 */
export async function pumpLog(ctx: ApiContext, build: Build, blocking: Redis, sink: LogSink): Promise<string | undefined> {
  if (!(await ctx.buildLogs.exists(build.id)) && isTerminal(build.status)) {
    sink.write((await logSoFar(ctx, build)).split("\n").filter(Boolean));
    return build.status;
  }
  let chunk = await ctx.buildLogs.read(build.id);
  for (;;) {
    sink.write(chunk.lines);
    if (chunk.ended) return chunk.ended;
    if (sink.closed()) return undefined;
    chunk = await ctx.buildLogs.waitFor(blocking, build.id, chunk.cursor, 5000);
    if (chunk.lines.length === 0 && !chunk.ended) {
      // Five quiet seconds: a build that ended without an end marker (its worker died after a
      // cancel, or the stream expired) must not keep followers waiting for ever.
      const current = await ctx.builds.get(build.id);
      if (current && isTerminal(current.status)) return current.status;
      sink.quiet();
    }
  }
}

/** Streams the log as it grows, as Server-Sent Events or plain chunked text, until the build ends. */
export async function followLog(ctx: ApiContext, build: Build, res: Response, format: "sse" | "text"): Promise<void> {
  const stream = openLiveStream(ctx, res, format === "sse" ? "text/event-stream" : "text/plain; charset=utf-8");
  const sink: LogSink = {
    write: (lines) => {
      for (const line of lines) res.write(format === "sse" ? `data: ${line}\n\n` : `${line}\n`);
    },
    quiet: () => {
      if (format === "sse") res.write(": keep-alive\n\n");
    },
    closed: stream.closed,
  };

  try {
    const status = await pumpLog(ctx, build, stream.blocking, sink);
    if (status === undefined) return;
    if (format === "sse") res.write(`event: end\ndata: ${status}\n\n`);
    res.end();
  } catch (error) {
    if (!stream.closed()) {
      ctx.logger.warn({ err: error, buildId: build.id }, "log follow ended early");
      res.end();
    }
  } finally {
    stream.release();
  }
}
