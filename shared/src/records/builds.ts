import type { Redis } from "ioredis";
import { CANCEL_CHANNEL, buildRecordSchema, publish, type Artifact, type Build, type BuildStatus } from "../contracts/index";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { parseRecord } from "./parse";

type BuildFields = Partial<Omit<Build, "id" | "app" | "createdAt">>;

function encode(fields: BuildFields | Build): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return out;
}

/**
 * A build is a Redis hash of strings (so a transition can set single fields): the boolean, the
 * number, the artifact and the phases go back to their types before the schema checks the whole. A hash
 * without `deploy` is a deploying build. Fields the schema does not know are left out.
 */
function decode(hash: Record<string, string>): Build {
  const { deploy, release, artifact, phasesMs, ...strings } = hash;
  const record = {
    ...strings,
    deploy: deploy !== "false",
    ...(release ? { release: Number(release) } : {}),
    ...(artifact ? { artifact: parseJson(artifact) } : {}),
    ...(phasesMs ? { phasesMs: parseJson(phasesMs) } : {}),
  };
  return parseRecord(buildRecordSchema, record, `build record ${hash.id}`);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Moves a build to a new status only from one of the allowed ones, so a late worker can never
 * overwrite a cancel, and a retried job can never rewind a finished build.
 */
const TRANSITION = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == status then allowed = true end end
if not allowed then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
`;

export class BuildRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  async create(build: Build): Promise<void> {
    // A global sequence orders builds (newest first) without ties, which keeps cursors exact.
    const order = await this.redis.incr(this.redisKeys.buildSeq);
    await this.redis.multi().hset(this.redisKeys.build(build.id), encode(build)).zadd(this.redisKeys.appBuilds(build.app), order, build.id).exec();
  }

  async get(id: string): Promise<Build | undefined> {
    const hash = await this.redis.hgetall(this.redisKeys.build(id));
    return hash.id ? decode(hash) : undefined;
  }

  /** Applies `fields` if the build's status is one of `from`; answers whether it did. */
  async transition(id: string, from: BuildStatus[], fields: BuildFields): Promise<boolean> {
    const args = Object.entries(encode(fields)).flat();
    const result = await this.redis.eval(TRANSITION, 1, this.redisKeys.build(id), from.join(","), ...args);
    return result === 1;
  }

  /** Newest first, `limit` at a time; `before` is the `next` of the previous page. */
  async listForApp(app: string, limit = 20, before?: number): Promise<{ builds: Build[]; next?: number }> {
    const max = before === undefined ? "+inf" : `(${before}`;
    const flat = await this.redis.zrevrangebyscore(this.redisKeys.appBuilds(app), max, "-inf", "WITHSCORES", "LIMIT", 0, limit + 1);
    const page: { id: string; order: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) page.push({ id: flat[i]!, order: Number(flat[i + 1]) });
    const more = page.length > limit;
    const shown = page.slice(0, limit);
    const builds = (await Promise.all(shown.map(({ id }) => this.get(id)))).filter((b): b is Build => b !== undefined);
    return { builds, ...(more ? { next: shown.at(-1)!.order } : {}) };
  }

  /** Every build id of an app, oldest first. */
  async idsForApp(app: string): Promise<string[]> {
    return this.redis.zrange(this.redisKeys.appBuilds(app), 0, -1);
  }

  /** Tells the worker running the build (if any) to kill its processes. */
  async announceCancel(id: string): Promise<void> {
    await publish(this.redis, CANCEL_CHANNEL, { buildId: id });
  }

  /**
   * Claims the queued rebuild of an app's source for `buildId` (for an hour at most) unless a
   * build already holds it. Answers the holder: `buildId` when the claim is ours, undefined when
   * the other holder let go in between.
   */
  async claimRebuild(rebuild: RebuildOf, buildId: string): Promise<string | undefined> {
    const key = this.redisKeys.queuedRebuild(rebuild.app, rebuild.sourceSha256, rebuild.noCache);
    if ((await this.redis.set(key, buildId, "EX", 3600, "NX")) === "OK") return buildId;
    return (await this.redis.get(key)) ?? undefined;
  }

  /** Lets go of the rebuild claim, only while `buildId` still holds it. */
  async releaseRebuildClaim(rebuild: RebuildOf, buildId: string): Promise<void> {
    await this.redis.eval(DELETE_IF, 1, this.redisKeys.queuedRebuild(rebuild.app, rebuild.sourceSha256, rebuild.noCache), buildId);
  }
}

/** Rebuilds of the same source coalesce only with the same noCache. */
export interface RebuildOf {
  app: string;
  sourceSha256: string;
  noCache: boolean;
}

/** Deletes `key` only while it still holds `value`. */
const DELETE_IF = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
