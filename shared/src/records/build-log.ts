import type { Redis } from "ioredis";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

/** A finished build's live log stays in Redis this long; the full log is in storage anyway. */
const ENDED_LOG_TTL_S = 7 * 24 * 3600;

export interface LogChunk {
  lines: string[];
  /** Set once the build has ended: its final status. */
  ended?: string;
  cursor: string;
}

type StreamEntries = [id: string, fields: string[]][];

function toChunk(entries: StreamEntries, cursor: string): LogChunk {
  const chunk: LogChunk = { lines: [], cursor };
  for (const [id, fields] of entries) {
    chunk.cursor = id;
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === "line") chunk.lines.push(fields[i + 1]!);
      else if (fields[i] === "end") chunk.ended = fields[i + 1]!;
    }
  }
  return chunk;
}

/** A build's log as a Redis stream: one entry per line, then one `end` entry. */
export class BuildLogStream {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  async append(buildId: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const line of lines) pipeline.xadd(this.redisKeys.buildLog(buildId), "*", "line", line);
    await pipeline.exec();
  }

  async end(buildId: string, status: string): Promise<void> {
    await this.redis
      .multi()
      .xadd(this.redisKeys.buildLog(buildId), "*", "end", status)
      .expire(this.redisKeys.buildLog(buildId), ENDED_LOG_TTL_S)
      .exec();
  }

  async exists(buildId: string): Promise<boolean> {
    return (await this.redis.exists(this.redisKeys.buildLog(buildId))) === 1;
  }

  /** Everything after `cursor` ("0" for the start). */
  async read(buildId: string, cursor = "0"): Promise<LogChunk> {
    const entries = (await this.redis.xrange(this.redisKeys.buildLog(buildId), cursor === "0" ? "-" : `(${cursor}`, "+")) as StreamEntries;
    return toChunk(entries, cursor);
  }

  /**
   * Waits up to `blockMs` for entries after `cursor`. Blocking reads hold their connection, so
   * `blockingRedis` must be a connection of the caller's own.
   */
  async waitFor(blockingRedis: Redis, buildId: string, cursor: string, blockMs: number): Promise<LogChunk> {
    const result = (await blockingRedis.xread("COUNT", 1000, "BLOCK", blockMs, "STREAMS", this.redisKeys.buildLog(buildId), cursor)) as
      | [string, StreamEntries][]
      | null;
    return toChunk(result?.[0]?.[1] ?? [], cursor);
  }
}
