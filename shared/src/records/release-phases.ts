import type { Redis } from "ioredis";
import { releasePhaseSchema, type ReleasePhase } from "../contracts/index";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";

/**
 * Stores the outcome on the release record and gives the claim back, in one step. A failure also
 * marks the release and its rollout `failed`, so no instance takes a turn for it afterwards.
 * KEYS: releases hash, rollout hash, claim. ARGV: version, outcome (JSON).
 */
const RECORD = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local release = cjson.decode(raw)
  local phase = cjson.decode(ARGV[2])
  release.releasePhase = phase
  if phase.state == 'failed' then
    release.state = 'failed'
    redis.call('HSET', KEYS[2], 'state', 'failed')
  end
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(release))
end
redis.call('DEL', KEYS[3])
`;

/**
 * Claims the release command unless its outcome is already recorded: one step, since recording
 * deletes the claim, and a claim taken between reading "no outcome" and claiming would run the
 * command a second time. KEYS: releases hash, claim. ARGV: version, instanceId, lease (ms).
 */
const CLAIM = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local phase = raw and cjson.decode(raw).releasePhase
if phase and phase ~= cjson.null then return 0 end
if redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') then return 1 end
return 0
`;

/** Deletes the claim if this instance still holds it. KEYS: claim. ARGV: instanceId. */
const GIVE_BACK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
`;

/**
 * Who runs a release's release command, and how it went. The claim is a lease: an agent that dies
 * while running it lets another instance claim it once the lease ends.
 */
export class ReleasePhaseRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  /** True when this instance may run the command: nobody holds the claim and no outcome is recorded. */
  async claim(app: string, version: number, instanceId: string, leaseMs: number): Promise<boolean> {
    const keys = [this.redisKeys.releases(app), this.redisKeys.releasePhaseClaim(app, version)];
    return (await this.redis.eval(CLAIM, 2, ...keys, String(version), instanceId, String(leaseMs))) === 1;
  }

  async outcome(app: string, version: number): Promise<ReleasePhase | undefined> {
    const raw = await this.redis.hget(this.redisKeys.releases(app), String(version));
    const phase = raw ? (JSON.parse(raw) as { releasePhase?: unknown }).releasePhase : undefined;
    return phase === undefined ? undefined : releasePhaseSchema.parse(phase);
  }

  /** Gives up the claim without an outcome (the command was interrupted): the next instance may run it at once. */
  async giveBack(app: string, version: number, instanceId: string): Promise<void> {
    await this.redis.eval(GIVE_BACK, 1, this.redisKeys.releasePhaseClaim(app, version), instanceId);
  }

  async record(app: string, version: number, phase: ReleasePhase): Promise<void> {
    const keys = [this.redisKeys.releases(app), this.redisKeys.rollout(app, version), this.redisKeys.releasePhaseClaim(app, version)];
    await this.redis.eval(RECORD, 3, ...keys, String(version), JSON.stringify(phase));
  }
}
