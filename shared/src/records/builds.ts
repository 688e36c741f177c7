import type { Redis } from "ioredis";
import type { Artifact, Build, BuildStatus } from "../contracts";
import { redisKeys } from "./keys";

type BuildFields = Partial<Omit<Build, "id" | "app" | "createdAt">>;

function encode(fields: BuildFields | Build): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  return out;
}

function decode(hash: Record<string, string>): Build {
  const build: Build = {
    id: hash.id!,
    app: hash.app!,
    status: hash.status as BuildStatus,
    createdAt: hash.createdAt!,
    sourceSha256: hash.sourceSha256!,
    sourceKey: hash.sourceKey!,
    deploy: hash.deploy !== "false",
  };
  for (const key of ["startedAt", "finishedAt", "platform", "platformVersion", "manifestKey", "error"] as const) {
    if (hash[key] !== undefined) build[key] = hash[key];
  }
  if (hash.artifact) build.artifact = JSON.parse(hash.artifact) as Artifact;
  if (hash.release) build.release = Number(hash.release);
  return build;
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
  constructor(private readonly redis: Redis) {}

  async create(build: Build): Promise<void> {
    await this.redis
      .multi()
      .hset(redisKeys.build(build.id), encode(build))
      .zadd(redisKeys.appBuilds(build.app), Date.parse(build.createdAt), build.id)
      .exec();
  }

  async get(id: string): Promise<Build | undefined> {
    const hash = await this.redis.hgetall(redisKeys.build(id));
    return hash.id ? decode(hash) : undefined;
  }

  /** Applies `fields` if the build's status is one of `from`; answers whether it did. */
  async transition(id: string, from: BuildStatus[], fields: BuildFields): Promise<boolean> {
    const args = Object.entries(encode(fields)).flat();
    const result = await this.redis.eval(TRANSITION, 1, redisKeys.build(id), from.join(","), ...args);
    return result === 1;
  }

  /** Newest first. */
  async listForApp(app: string, limit = 50): Promise<Build[]> {
    const ids = await this.redis.zrevrange(redisKeys.appBuilds(app), 0, limit - 1);
    const builds = await Promise.all(ids.map((id) => this.get(id)));
    return builds.filter((b): b is Build => b !== undefined);
  }
}
