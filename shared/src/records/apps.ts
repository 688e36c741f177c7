import type { Redis } from "ioredis";
import { appRecordSchema, type AppRecord } from "../contracts/index";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { PATCH_APP_ENV, UPSERT_APP } from "./app-scripts";
import { parseJsonRecord } from "./parse";

// Fields a later version drops stay in the stored record and its answers, as they always have.
const storedApp = appRecordSchema.passthrough();
const readApp = (text: string): AppRecord => parseJsonRecord(storedApp, text, "app record");

export type AppChanges = Partial<Pick<AppRecord, "env" | "buildEnv" | "startupCommand" | "releaseCommand" | "healthCheck" | "latestSourceSha256" | "latestSourceKey" | "retention" | "affinity">>;

export class AppRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  async get(name: string): Promise<AppRecord | undefined> {
    const raw = await this.redis.get(this.redisKeys.app(name));
    return raw ? readApp(raw) : undefined;
  }

  /** By name; with `limit`, one page of names after `after`. */
  async list(limit?: number, after?: string): Promise<AppRecord[]> {
    const all = (await this.redis.smembers(this.redisKeys.apps)).sort().filter((name) => after === undefined || name > after);
    const names = limit === undefined ? all : all.slice(0, limit);
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map(this.redisKeys.app));
    return raws.filter((raw): raw is string => raw !== null).map(readApp);
  }

  /** Removes the app's records: config, builds, releases, instance reports, live logs, cache digests. */
  async delete(name: string, buildIds: string[]): Promise<void> {
    const keys = [
      this.redisKeys.app(name),
      this.redisKeys.appBuilds(name),
      this.redisKeys.releases(name),
      this.redisKeys.releaseSeq(name),
      this.redisKeys.currentRelease(name),
      this.redisKeys.instances(name),
      this.redisKeys.cacheDigests(name),
      this.redisKeys.appLogs(name),
      ...buildIds.flatMap((id) => [this.redisKeys.build(id), this.redisKeys.buildLog(id)]),
    ];
    const pipeline = this.redis.multi().srem(this.redisKeys.apps, name);
    for (let i = 0; i < keys.length; i += 500) pipeline.del(...keys.slice(i, i + 500));
    await pipeline.exec();
  }

  /**
   * Creates the app if needed and applies `changes`; returns the record, the one it replaced,
   * and whether it is new. One script, so a concurrent write to another field is never lost.
   */
  async upsert(name: string, changes: AppChanges = {}): Promise<{ app: AppRecord; created: boolean; previous?: AppRecord }> {
    const [previous, written] = (await this.redis.eval(UPSERT_APP, 3, this.redisKeys.app(name), this.redisKeys.apps, this.redisKeys.appsUnsettled, name, new Date().toISOString(), JSON.stringify(changes))) as [string, string];
    return { app: readApp(written), created: previous === "", ...(previous ? { previous: readApp(previous) } : {}) };
  }

  /**
   * Sets and removes `env` variables of an existing app in one atomic step, so concurrent patches
   * of different variables all survive; undefined when there is no such app.
   */
  async patchEnv(name: string, set: Record<string, string>, unset: string[]): Promise<{ app: AppRecord; previous: AppRecord } | undefined> {
    const [previous, written] = (await this.redis.eval(PATCH_APP_ENV, 1, this.redisKeys.app(name), new Date().toISOString(), JSON.stringify(set), JSON.stringify(unset))) as [string, string];
    return previous ? { app: readApp(written), previous: readApp(previous) } : undefined;
  }
}
