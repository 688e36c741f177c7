import type { Redis } from "ioredis";
import { appLogEntrySchema, type AppLogEntry } from "../contracts/app-logs";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

/** An app log line with its stream id: where a reader resumes. */
export interface AppLogRecord extends AppLogEntry {
  id: string;
}

export interface AppLogBounds {
  maxLines: number;
  maxAgeS: number;
}

/** Lines strictly after a stream id, or from a time on; neither: the newest lines. */
export type AppLogSince = { afterId: string } | { fromMs: number };

export interface AppLogQuery {
  instance?: string;
  since?: AppLogSince;
  limit: number;
}

export interface AppLogPage {
  records: AppLogRecord[];
  /** The newest stream id looked at: a follower reads on from here without gaps or repeats. */
  cursor: string;
}

type StreamEntries = [id: string, fields: string[]][];

/** Entries are read in batches this large while a filter skips some. */
const SCAN_BATCH = 1000;

function toRecord([id, fields]: [string, string[]]): AppLogRecord | undefined {
  const raw: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) raw[fields[i]!] = fields[i + 1]!;
  const parsed = appLogEntrySchema.safeParse({ ...raw, release: raw.release ? Number(raw.release) : null });
  return parsed.success ? { id, ...parsed.data } : undefined;
}

/**
 * An app's log as one Redis stream for all its instances, bounded by length (MAXLEN) and age
 * (MINID), so a chatty app costs Redis a fixed amount of memory.
 */
export class AppLogStream {
  constructor(
    private readonly redis: Redis,
    private readonly redisKeys: RecordKeys = defaultKeys,
  ) {}

  /** One round trip for the whole batch; trimming is approximate (whole stream nodes), which keeps it cheap. */
  async append(app: string, entries: AppLogEntry[], bounds: AppLogBounds): Promise<void> {
    if (entries.length === 0) return;
    const key = this.redisKeys.appLogs(app);
    const pipeline = this.redis.pipeline();
    for (const { time, instanceId, release, stream, line } of entries) {
      pipeline.xadd(key, "MAXLEN", "~", bounds.maxLines, "*", "time", time, "instanceId", instanceId, "release", release === null ? "" : String(release), "stream", stream, "line", line);
    }
    pipeline.xtrim(key, "MINID", "~", Date.now() - bounds.maxAgeS * 1000);
    // An app nobody runs any more leaves no stream behind.
    pipeline.pexpire(key, bounds.maxAgeS * 1000);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  /** With `since`, the first `limit` matching lines after it; without, the newest `limit`. Oldest first either way. */
  async read(app: string, query: AppLogQuery): Promise<AppLogPage> {
    return query.since ? this.readForward(app, query, query.since) : this.readNewest(app, query);
  }

  /**
   * Waits up to `blockMs` for lines after `cursor`. Blocking reads hold their connection, so
   * `blockingRedis` must be a connection of the caller's own.
   */
  async waitFor(blockingRedis: Redis, app: string, cursor: string, blockMs: number, instance?: string): Promise<AppLogPage> {
    const result = (await blockingRedis.xread("COUNT", SCAN_BATCH, "BLOCK", blockMs, "STREAMS", this.redisKeys.appLogs(app), cursor)) as [string, StreamEntries][] | null;
    const entries = result?.[0]?.[1] ?? [];
    return { records: this.matching(entries, instance), cursor: entries.at(-1)?.[0] ?? cursor };
  }

  private async readForward(app: string, query: AppLogQuery, since: AppLogSince): Promise<AppLogPage> {
    const key = this.redisKeys.appLogs(app);
    const records: AppLogRecord[] = [];
    let start = "afterId" in since ? `(${since.afterId}` : String(since.fromMs);
    let cursor = "afterId" in since ? since.afterId : `${Math.max(0, since.fromMs - 1)}-18446744073709551615`;
    while (records.length < query.limit) {
      const entries = (await this.redis.xrange(key, start, "+", "COUNT", SCAN_BATCH)) as StreamEntries;
      for (const entry of entries) {
        const [record] = this.matching([entry], query.instance);
        cursor = entry[0];
        if (record) records.push(record);
        if (records.length === query.limit) break;
      }
      if (entries.length < SCAN_BATCH) break;
      start = `(${entries.at(-1)![0]}`;
    }
    return { records, cursor };
  }

  private async readNewest(app: string, query: AppLogQuery): Promise<AppLogPage> {
    const key = this.redisKeys.appLogs(app);
    const newestFirst: AppLogRecord[] = [];
    let cursor: string | undefined;
    let end = "+";
    while (newestFirst.length < query.limit) {
      const entries = (await this.redis.xrevrange(key, end, "-", "COUNT", SCAN_BATCH)) as StreamEntries;
      cursor ??= entries[0]?.[0];
      newestFirst.push(...this.matching(entries, query.instance));
      if (entries.length < SCAN_BATCH) break;
      end = `(${entries.at(-1)![0]}`;
    }
    return { records: newestFirst.slice(0, query.limit).reverse(), cursor: cursor ?? "0-0" };
  }

  private matching(entries: StreamEntries, instance: string | undefined): AppLogRecord[] {
    const records: AppLogRecord[] = [];
    for (const entry of entries) {
      const record = toRecord(entry);
      if (record && (instance === undefined || record.instanceId === instance)) records.push(record);
    }
    return records;
  }
}
