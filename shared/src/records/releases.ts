import type { Redis } from "ioredis";
import { releaseRecordSchema, type Release, type ReleaseReason } from "../contracts/index";
import { checkVersion } from "./ids";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { parseJsonRecord } from "./parse";

const storedRelease = releaseRecordSchema.passthrough();
const readRelease = (text: string): Release => parseJsonRecord(storedRelease, text, "release record");

/**
 * Numbers and stores a release atomically. A release made for a build (reason "build") is made at
 * most once per build: a retried job gets the version the first attempt created.
 * KEYS: build hash, sequence, releases hash, current pointer. ARGV: buildId, createdAt, reason.
 */
const CREATE_RELEASE = `
if ARGV[3] == 'build' then
  local existing = redis.call('HGET', KEYS[1], 'release')
  if existing then return {tonumber(existing), 0} end
  -- A canceled (or otherwise finished) build never gets a release.
  if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return {-1, 0} end
end
local version = redis.call('INCR', KEYS[2])
local release = cjson.encode({version = version, buildId = ARGV[1], createdAt = ARGV[2], reason = ARGV[3]})
redis.call('HSET', KEYS[3], tostring(version), release)
redis.call('SET', KEYS[4], tostring(version))
if ARGV[3] == 'build' then redis.call('HSET', KEYS[1], 'release', tostring(version)) end
return {version, 1}
`;

/**
 * A new release of whatever build is current, read in the same step, so a build released
 * meanwhile is never replaced by the older one. KEYS: sequence, releases hash, current pointer.
 * ARGV: createdAt, reason. Returns the new version, or -1 while the app has no release.
 */
const RELEASE_CURRENT_BUILD = `
local current = redis.call('GET', KEYS[3])
if not current then return -1 end
local buildId = cjson.decode(redis.call('HGET', KEYS[2], current)).buildId
local version = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], tostring(version), cjson.encode({version = version, buildId = buildId, createdAt = ARGV[1], reason = ARGV[2]}))
redis.call('SET', KEYS[3], tostring(version))
return version
`;

export class ReleaseRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  /**
   * Returns the release and whether this call created it (false when a retry found it made), or
   * undefined when a build's release was refused because the build is no longer running.
   */
  async create(app: string, buildId: string, reason: ReleaseReason): Promise<{ release: Release; created: boolean } | undefined> {
    const createdAt = new Date().toISOString();
    const [version, created] = (await this.redis.eval(
      CREATE_RELEASE,
      4,
      this.redisKeys.build(buildId),
      this.redisKeys.releaseSeq(app),
      this.redisKeys.releases(app),
      this.redisKeys.currentRelease(app),
      buildId,
      createdAt,
      reason,
    )) as [number, number];
    if (version === -1) return undefined;
    const release = await this.get(app, version);
    return { release: release!, created: created === 1 };
  }

  /** Releases the current build again (a `config` release); undefined while the app has no release. */
  async releaseCurrentBuild(app: string, reason: Exclude<ReleaseReason, "build">): Promise<Release | undefined> {
    const keys = [this.redisKeys.releaseSeq(app), this.redisKeys.releases(app), this.redisKeys.currentRelease(app)];
    const version = (await this.redis.eval(RELEASE_CURRENT_BUILD, 3, ...keys, new Date().toISOString(), reason)) as number;
    return version === -1 ? undefined : this.get(app, version);
  }

  async get(app: string, version: number): Promise<Release | undefined> {
    const raw = await this.redis.hget(this.redisKeys.releases(app), String(checkVersion(version)));
    return raw ? readRelease(raw) : undefined;
  }

  async count(app: string): Promise<number> {
    return this.redis.hlen(this.redisKeys.releases(app));
  }

  async current(app: string): Promise<Release | undefined> {
    const version = await this.redis.get(this.redisKeys.currentRelease(app));
    return version ? this.get(app, Number(version)) : undefined;
  }

  /** Newest first; with `limit`, one page of releases older than version `before`. */
  async list(app: string, limit?: number, before?: number): Promise<Release[]> {
    const all = await this.redis.hvals(this.redisKeys.releases(app));
    const sorted = all
      .map(readRelease)
      .filter((release) => before === undefined || release.version < before)
      .sort((a, b) => b.version - a.version);
    return limit === undefined ? sorted : sorted.slice(0, limit);
  }
}
