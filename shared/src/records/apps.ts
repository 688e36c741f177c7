import type { Redis } from "ioredis";
import { appRecordSchema, type AppRecord } from "../contracts/index";
import { redisKeys } from "./keys";
import { parseJsonRecord } from "./parse";

// Fields a later version drops stay in the stored record and its answers, as they always have.
const storedApp = appRecordSchema.passthrough();
const readApp = (text: string): AppRecord => parseJsonRecord(storedApp, text, "app record");

export type AppChanges = Partial<Pick<AppRecord, "env" | "buildEnv" | "startupCommand" | "latestSourceSha256" | "latestSourceKey" | "retention">>;

export class AppRepository {
  constructor(private readonly redis: Redis) {}

  async get(name: string): Promise<AppRecord | undefined> {
    const raw = await this.redis.get(redisKeys.app(name));
    return raw ? readApp(raw) : undefined;
  }

  /** By name; with `limit`, one page of names after `after`. */
  async list(limit?: number, after?: string): Promise<AppRecord[]> {
    const all = (await this.redis.smembers(redisKeys.apps)).sort().filter((name) => after === undefined || name > after);
    const names = limit === undefined ? all : all.slice(0, limit);
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map(redisKeys.app));
    return raws.filter((raw): raw is string => raw !== null).map(readApp);
  }

  /** Removes the app's records: config, builds, releases, instance reports, live logs, cache digests. */
  async delete(name: string, buildIds: string[]): Promise<void> {
    const keys = [
      redisKeys.app(name),
      redisKeys.appBuilds(name),
      redisKeys.releases(name),
      redisKeys.releaseSeq(name),
      redisKeys.currentRelease(name),
      redisKeys.instances(name),
      redisKeys.cacheDigests(name),
      ...buildIds.flatMap((id) => [redisKeys.build(id), redisKeys.buildLog(id)]),
    ];
    const pipeline = this.redis.multi().srem(redisKeys.apps, name);
    for (let i = 0; i < keys.length; i += 500) pipeline.del(...keys.slice(i, i + 500));
    await pipeline.exec();
  }

  /** Creates the app if needed and applies `changes`; returns the record and whether it is new. */
  async upsert(name: string, changes: AppChanges = {}): Promise<{ app: AppRecord; created: boolean }> {
    const key = redisKeys.app(name);
    // Optimistic concurrency: two writers of one app retry rather than lose each other's changes.
    for (;;) {
      await this.redis.watch(key);
      const raw = await this.redis.get(key);
      const now = new Date().toISOString();
      const existing = raw ? readApp(raw) : undefined;
      const app: AppRecord = {
        ...(existing ?? { name, env: {}, buildEnv: {}, createdAt: now }),
        ...changes,
        updatedAt: now,
      };
      const result = await this.redis.multi().set(key, JSON.stringify(app)).sadd(redisKeys.apps, name).exec();
      if (result) return { app, created: !existing };
    }
  }
}
