import type { Redis } from "ioredis";
import { hostRecordSchema, PLACEMENT_CHANNEL, type HostRecord, type HostStatus } from "../contracts/index";
import { checkAppName, checkHostId } from "./ids";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { parseJsonRecord } from "./parse";
import { HOST_BEAT, PLACE, UNPLACE_APP } from "./placement-scripts";

/** One instance a host is to run. */
export interface Placement {
  app: string;
  instanceId: string;
  epoch: number;
}

export interface PlaceOptions {
  /** Whether hosts silent past `deadMs` count as lost (not while Redis itself may have just restarted). */
  mayDeclareLost: boolean;
  deadMs: number;
  defaultInstances: number;
  /** A new desired count to record first. */
  desired?: number;
}

/**
 * Hosts, their heartbeats, and where each app's instances are placed. Every change is one script
 * (see placement-scripts.ts); a placement's instance id is unique for ever, so a report or a host
 * naming a placement that was moved names one that no longer exists.
 */
export class PlacementRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  /** Registers the host (again) and answers what it is to run. */
  async beat(host: HostRecord): Promise<Placement[]> {
    const k = this.redisKeys;
    const flat = (await this.redis.eval(HOST_BEAT, 3, k.hosts, k.hostBeats, k.hostPlacements(host.id), host.id, JSON.stringify(host))) as string[];
    const placements: Placement[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const [app, instanceId] = flat[i]!.split("/") as [string, string];
      placements.push({ app, instanceId, epoch: Number(flat[i + 1]) });
    }
    return placements;
  }

  /** Brings the app's placements to its desired count (see PLACE). */
  async place(app: string, options: PlaceOptions): Promise<{ desired: number; placed: number }> {
    const k = this.redisKeys;
    const keys = [k.placements(app), k.scale(app), k.hosts, k.hostBeats, k.hostsDraining, k.placementSeq, k.appsUnsettled, k.instances(app), k.currentRelease(app), k.app(app)];
    const args = [k.hostPlacementsPrefix, app, options.deadMs, options.mayDeclareLost ? "1" : "0", options.defaultInstances, PLACEMENT_CHANNEL, options.desired ?? ""];
    const [desired, placed] = (await this.redis.eval(PLACE, keys.length, ...keys, ...args)) as [number, number];
    return { desired, placed };
  }

  /** Removes every placement of the app; its hosts stop its instances. */
  async unplaceApp(app: string): Promise<void> {
    const k = this.redisKeys;
    await this.redis.eval(UNPLACE_APP, 3, k.placements(app), k.scale(app), k.appsUnsettled, k.hostPlacementsPrefix, checkAppName(app), PLACEMENT_CHANNEL);
  }

  /** The app's desired instance count (the default until one was set) and how many are placed. */
  async scaleOf(app: string, defaultInstances: number): Promise<{ desired: number; placed: number }> {
    const [desired, placed] = await this.redis.hmget(this.redisKeys.scale(app), "desired", "placed");
    return { desired: desired === null ? defaultInstances : Number(desired), placed: Number(placed ?? 0) };
  }

  /** The app's placements: instance id → host. */
  async hostsOf(app: string): Promise<Map<string, string>> {
    const all = await this.redis.hgetall(this.redisKeys.placements(app));
    return new Map(Object.entries(all).map(([instanceId, raw]) => [instanceId, (JSON.parse(raw) as { host: string }).host]));
  }

  /** Apps the placement loop must look at: unsettled ones, and those with instances on the given hosts. */
  async appsToPlace(hosts: string[]): Promise<string[]> {
    const k = this.redisKeys;
    const pipeline = this.redis.pipeline().smembers(k.appsUnsettled);
    for (const host of hosts) pipeline.hkeys(k.hostPlacements(host));
    const answers = (await pipeline.exec()) ?? [];
    const apps = new Set<string>();
    for (const [error, value] of answers) {
      if (error) throw error;
      for (const entry of value as string[]) apps.add(entry.split("/")[0]!);
    }
    return [...apps];
  }

  /** Hosts silent since before `deadMs` ago (by Redis's clock), and the draining ones. */
  async hostsNeedingMoves(deadMs: number): Promise<string[]> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const [silent, draining] = await Promise.all([this.redis.zrangebyscore(this.redisKeys.hostBeats, "-inf", `(${now - deadMs}`), this.redis.smembers(this.redisKeys.hostsDraining)]);
    return [...new Set([...silent, ...draining])];
  }

  /** Marks a host draining (or not); false when there is no such host. */
  async setDraining(id: string, draining: boolean): Promise<boolean> {
    const k = this.redisKeys;
    if (!(await this.redis.hexists(k.hosts, checkHostId(id)))) return false;
    if (draining) await this.redis.sadd(k.hostsDraining, id);
    else await this.redis.srem(k.hostsDraining, id);
    return true;
  }

  async hosts(deadMs: number): Promise<HostStatus[]> {
    const k = this.redisKeys;
    const [records, beats, draining, [seconds, micros]] = await Promise.all([this.redis.hgetall(k.hosts), this.redis.zrange(k.hostBeats, 0, -1, "WITHSCORES"), this.redis.smembers(k.hostsDraining), this.redis.time()]);
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const beatOf = new Map<string, number>();
    for (let i = 0; i < beats.length; i += 2) beatOf.set(beats[i]!, Number(beats[i + 1]));
    const ids = Object.keys(records).sort();
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hkeys(k.hostPlacements(id));
    const placed = ((await pipeline.exec()) ?? []).map(([, value]) => (value as string[]).sort());
    return ids.map((id, i) => {
      const record = parseJsonRecord(hostRecordSchema, records[id]!, "host record");
      const beat = beatOf.get(id);
      const state = beat === undefined || beat < now - deadMs ? "lost" : draining.includes(id) ? "draining" : "ready";
      const instances = placed[i]!.map((entry) => {
        const [app, instanceId] = entry.split("/") as [string, string];
        return { app, instanceId };
      });
      return { ...record, state, instances, lastHeartbeatAt: beat === undefined ? null : new Date(beat).toISOString() };
    });
  }
}
