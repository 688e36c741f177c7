import type { Redis } from "ioredis";
import { publish, ROLLOUT_CHANNEL, type RolloutState } from "../contracts/index";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

export type RolloutTurn = "go" | "wait" | "halted";

/**
 * Takes a switching slot for one instance. The first instance to switch (the canary) goes alone;
 * after one success, up to `maxUnavailable` switch at once. A failed canary halts the rollout.
 * Slots older than the lease are dropped, so a dead agent cannot block a rollout for ever.
 * KEYS: rollout hash, holders zset, releases hash. ARGV: instanceId, maxUnavailable, now, leaseMs, version.
 */
const ACQUIRE = `
if redis.call('HGET', KEYS[1], 'state') == 'failed' then return 'halted' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'go' end
local successes = tonumber(redis.call('HGET', KEYS[1], 'successes') or '0')
local holders = redis.call('ZCARD', KEYS[2])
if successes == 0 and holders >= 1 then return 'wait' end
if holders >= tonumber(ARGV[2]) then return 'wait' end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if holders + 1 > tonumber(redis.call('HGET', KEYS[1], 'maxConcurrent') or '0') then
  redis.call('HSET', KEYS[1], 'maxConcurrent', holders + 1)
end
if not redis.call('HGET', KEYS[1], 'state') then
  redis.call('HSET', KEYS[1], 'state', 'rolling')
  local raw = redis.call('HGET', KEYS[3], ARGV[5])
  if raw then
    local release = cjson.decode(raw)
    release.state = 'rolling'
    redis.call('HSET', KEYS[3], ARGV[5], cjson.encode(release))
  end
end
return 'go'
`;

/**
 * Gives the slot back. A failure before any success halts the rollout and marks the release
 * failed; `complete` marks the release complete once every live instance runs it; `abandoned`
 * (the instance is going away) only frees the slot.
 * KEYS: rollout hash, holders zset, releases hash. ARGV: instanceId, outcome (ok|failed|abandoned), version, complete (1|0).
 */
const FINISH = `
redis.call('ZREM', KEYS[2], ARGV[1])
local state = nil
if ARGV[2] == 'ok' then
  redis.call('HINCRBY', KEYS[1], 'successes', 1)
  if ARGV[4] == '1' and redis.call('HGET', KEYS[1], 'state') ~= 'failed' then state = 'complete' end
elseif ARGV[2] == 'failed' then
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if tonumber(redis.call('HGET', KEYS[1], 'successes') or '0') == 0 then state = 'failed' end
end
if state then
  redis.call('HSET', KEYS[1], 'state', state)
  local raw = redis.call('HGET', KEYS[3], ARGV[3])
  if raw then
    local release = cjson.decode(raw)
    release.state = state
    redis.call('HSET', KEYS[3], ARGV[3], cjson.encode(release))
  end
end
return state or ''
`;

/** How an instance's turn ended. */
export type TurnOutcomeRecord = "ok" | "failed" | "abandoned";

export interface RolloutStatus {
  state?: RolloutState;
  successes: number;
  failures: number;
  maxConcurrent: number;
}

/** Coordinates one release's move through an app's instances (see ACQUIRE). */
export class RolloutRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  private keys(app: string, version: number): [string, string, string] {
    return [this.redisKeys.rollout(app, version), this.redisKeys.rolloutHolders(app, version), this.redisKeys.releases(app)];
  }

  async acquire(app: string, version: number, instanceId: string, maxUnavailable: number, leaseMs: number): Promise<RolloutTurn> {
    return (await this.redis.eval(ACQUIRE, 3, ...this.keys(app, version), instanceId, maxUnavailable, Date.now(), leaseMs, String(version))) as RolloutTurn;
  }

  async finish(app: string, version: number, instanceId: string, outcome: TurnOutcomeRecord, everyInstanceDone: boolean): Promise<void> {
    await this.redis.eval(FINISH, 3, ...this.keys(app, version), instanceId, outcome, String(version), everyInstanceDone ? "1" : "0");
    // Instances waiting for a turn poll anyway; the event only spares them the wait for their next poll.
    await publish(this.redis, ROLLOUT_CHANNEL, { app, version });
  }

  async status(app: string, version: number): Promise<RolloutStatus> {
    const hash = await this.redis.hgetall(this.redisKeys.rollout(app, version));
    return {
      ...(hash.state ? { state: hash.state as RolloutState } : {}),
      successes: Number(hash.successes ?? 0),
      failures: Number(hash.failures ?? 0),
      maxConcurrent: Number(hash.maxConcurrent ?? 0),
    };
  }
}
