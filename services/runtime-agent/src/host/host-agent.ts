import { mkdir, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { hostCacheDir, PLACEMENT_CHANNEL, PlacementRepository, recordKeys, sandboxUidDir, type AgentConfig, type HostConfig, type HostRecord, type Logger, type ObjectStore, type Placement } from "@slipway/shared";
import { APP_NAME_PATTERN, INSTANCE_ID_PATTERN } from "@slipway/shared/contracts";
import { CoalescedPass, heartbeatFile, startHeartbeat, type HeartbeatFile } from "@slipway/shared/light";
import { RuntimeAgent } from "../agent";
import { AppProcessNotes } from "../orphans";
import { HostMetrics } from "./metrics";
import { PortPool } from "./port-pool";
import { instanceNetworkOwner, removeInstanceNetworks } from "@slipway/shared/sandbox";

/** How long an instance leaving this host lets requests in flight finish, then its app gets to exit. */
const INSTANCE_DRAIN_MS = 10_000;

interface HostedInstance {
  placement: Placement;
  agent: RuntimeAgent;
  port: number;
  root: string;
}

/**
 * One per host: heartbeats the host into Redis and runs exactly the instances placed on it, each
 * a RuntimeAgent of its own (sandbox, uid, port, runtime root). The placements the heartbeat
 * answers are the only truth: an instance running here that is not among them was moved while
 * this host was silent, and stops before anything new starts.
 */
export class HostAgent {
  private readonly placements: PlacementRepository;
  private readonly ports: PortPool;
  private readonly instances = new Map<string, HostedInstance>();
  private readonly leaving = new Set<Promise<void>>();
  private readonly startedAt = new Date().toISOString();
  private timer: NodeJS.Timeout | undefined;
  private subscriber: Redis | undefined;
  private readonly beats = new CoalescedPass(() => this.beatOnce(), () => this.stopping);
  private swept = false;
  private stopping = false;
  /** When Redis last answered a heartbeat. */
  private lastBeatAt = 0;
  /** What the container's healthcheck reads: rewritten while heartbeats are answered. */
  private healthFile: HeartbeatFile | undefined;

  constructor(
    private readonly config: HostConfig,
    private readonly redis: Redis,
    private readonly store: ObjectStore,
    private readonly logger: Logger,
    readonly metrics = new HostMetrics(),
  ) {
    this.placements = new PlacementRepository(redis, recordKeys(config.QUEUE_PREFIX));
    this.ports = new PortPool(config.INSTANCE_PORTS);
  }

  /** Where the instances' runtime roots are: one directory per app, one per instance in it. */
  private get instancesRoot(): string {
    return path.join(this.config.RUNTIME_ROOT, "instances");
  }

  /** Heartbeats at once and from then on; resolves after the first beat was tried. */
  async start(): Promise<void> {
    await mkdir(this.instancesRoot, { recursive: true });
    // None of this agent's instances runs yet: networks an earlier run of it left are leftovers.
    if (this.config.SANDBOX === "on") {
      const removed = await removeInstanceNetworks(instanceNetworkOwner(this.config.HOST_ID, hostCacheDir(this.config)));
      if (removed) this.logger.info({ removed }, "removed instance networks an earlier run of this host agent left");
    }
    // A hint only (the beat answers the truth), so a missed message costs at most one interval.
    const subscriber = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    subscriber.on("error", () => undefined);
    subscriber.on("message", (_channel, host) => {
      if (host === this.config.HOST_ID) void this.beat();
    });
    void subscriber.subscribe(PLACEMENT_CHANNEL).catch((error: unknown) => this.logger.warn({ err: error }, "could not subscribe to placement changes"));
    this.subscriber = subscriber;
    const intervalMs = beatIntervalMs(this.config.HOST_DEAD_S);
    this.timer = setInterval(() => void this.beat(), intervalMs).unref();
    await this.beat();
    this.healthFile = startHeartbeat(heartbeatFile(this.config.RUNTIME_ROOT), intervalMs, async () => Date.now() - this.lastBeatAt < 2 * intervalMs);
    this.logger.info({ host: this.config.HOST_ID, address: this.config.HOST_ADDRESS, capacity: this.config.HOST_CAPACITY }, `host ${this.config.HOST_ID} serving instances on ${this.config.HOST_ADDRESS}`);
  }

  /** The instances running here now: instance id → app and port. */
  running(): { app: string; instanceId: string; port: number }[] {
    return [...this.instances.values()].map(({ placement, port }) => ({ app: placement.app, instanceId: placement.instanceId, port }));
  }

  /** The RuntimeAgent of a running instance (tests look inside). */
  instance(instanceId: string): RuntimeAgent | undefined {
    return this.instances.get(instanceId)?.agent;
  }

  /**
   * Stops every instance here (draining each for `drainMs`) and the heartbeat. The placements stay:
   * a host agent restarted within HOST_DEAD_S takes its instances back; one that stays away has
   * them placed elsewhere.
   */
  async stop(drainMs = INSTANCE_DRAIN_MS): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.subscriber?.disconnect();
    await this.healthFile?.stop();
    await this.beats.settled();
    const stops = [...this.instances.values()].map(({ agent, port }) =>
      agent
        .stop(drainMs, drainMs)
        .then((drain) => this.metrics.drained(drain))
        .finally(() => this.ports.release(port)),
    );
    this.instances.clear();
    await Promise.allSettled([...stops, ...this.leaving]);
  }

  /** One heartbeat and the sync it answers; concurrent calls coalesce into one more. */
  private beat(): Promise<void> {
    return this.beats.run();
  }

  private async beatOnce(): Promise<void> {
    try {
      const placements = await this.placements.beat(this.record());
      this.lastBeatAt = Date.now();
      if (!this.stopping) await this.sync(placements);
    } catch (error) {
      this.logger.debug({ err: error }, "host heartbeat failed");
    }
  }

  private record(): HostRecord {
    const { HOST_ID: id, HOST_ADDRESS: address, HOST_CAPACITY, HOST_LABELS: labels, INSTANCE_PORTS } = this.config;
    // An instance needs a port: a host with fewer ports than HOST_CAPACITY takes only as many.
    const capacity = Math.min(HOST_CAPACITY, INSTANCE_PORTS.length);
    return { id, address, capacity, memoryMb: Math.floor(os.totalmem() / 1024 / 1024), labels: labels ?? {}, startedAt: this.startedAt };
  }

  private async sync(placements: Placement[]): Promise<void> {
    const wanted = new Set(placements.map((p) => p.instanceId));
    // Fencing first: an instance this host no longer holds stops taking requests at once.
    for (const instanceId of [...this.instances.keys()]) if (!wanted.has(instanceId)) this.retire(instanceId);
    if (!this.swept) {
      this.swept = true;
      await this.sweepUnplaced(wanted);
    }
    for (const placement of placements) if (!this.instances.has(placement.instanceId)) this.launch(placement);
  }

  private launch(placement: Placement): void {
    const { app, instanceId } = placement;
    const port = this.ports.take();
    if (port === undefined) {
      this.logger.error({ app, instanceId }, "no free port left in INSTANCE_PORTS: the instance waits for one");
      return;
    }
    const root = path.join(this.instancesRoot, app, instanceId);
    const logger = this.logger.child({ app, instanceId });
    const config: AgentConfig = {
      ...this.config,
      APP: app,
      INSTANCE_ID: instanceId,
      PORT: port,
      RUNTIME_ROOT: root,
      HOST_CACHE_DIR: hostCacheDir(this.config),
      SANDBOX_UID_DIR: sandboxUidDir(this.config),
      HOST_ID: this.config.HOST_ID,
      HOST_ADDRESS: this.config.HOST_ADDRESS,
    };
    const agent = new RuntimeAgent(config, this.redis, this.store, logger, undefined, { onFenced: () => void this.beat() });
    const instance: HostedInstance = { placement, agent, port, root };
    this.instances.set(instanceId, instance);
    logger.info({ port }, `starting instance ${instanceId} of ${app} on port ${port}`);
    agent.start().catch(async (error: unknown) => {
      if (this.instances.get(instanceId) !== instance) return;
      this.instances.delete(instanceId);
      await agent.stop(0, 0).catch(() => undefined);
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
        logger.warn({ port }, `port ${port} is in use by another program: the instance takes another`);
        this.ports.markBusy(port);
      } else {
        logger.error({ err: error }, "the instance could not start; it is tried again at the next heartbeat");
        this.ports.release(port);
      }
    });
  }

  /** Stops an instance that is no longer placed here and removes its runtime root (its uid claim goes with it). */
  private retire(instanceId: string): void {
    const instance = this.instances.get(instanceId);
    if (!instance) return;
    this.instances.delete(instanceId);
    const { agent, port, root, placement } = instance;
    this.logger.info({ app: placement.app, instanceId }, `instance ${instanceId} of ${placement.app} is no longer placed here: stopping it`);
    const leaving = agent
      .stop(INSTANCE_DRAIN_MS, INSTANCE_DRAIN_MS)
      .then((drain) => this.metrics.drained(drain))
      .then(() => rm(root, { recursive: true, force: true }))
      .catch((error: unknown) => this.logger.warn({ err: error, instanceId }, "could not stop or remove an instance that left"))
      .finally(() => {
        this.ports.release(port);
        this.leaving.delete(leaving);
      });
    this.leaving.add(leaving);
  }

  /**
   * Instances an earlier run of this host agent left that are not placed here any more (moved
   * while this host was away): their apps are stopped and their directories removed, once, before
   * the first instance starts.
   */
  private async sweepUnplaced(wanted: Set<string>): Promise<void> {
    for (const app of await readdir(this.instancesRoot).catch(() => [])) {
      if (!APP_NAME_PATTERN.test(app)) continue;
      for (const instanceId of await readdir(path.join(this.instancesRoot, app)).catch(() => [])) {
        if (wanted.has(instanceId) || !INSTANCE_ID_PATTERN.test(instanceId)) continue;
        const root = path.join(this.instancesRoot, app, instanceId);
        await new AppProcessNotes(root, this.logger).stopOrphans();
        await rm(root, { recursive: true, force: true });
        this.logger.info({ app, instanceId }, `removed instance ${instanceId} of ${app}: it was placed elsewhere while this host was away`);
      }
    }
  }
}

/** Five beats per HOST_DEAD_S, at most one every 3 s. */
export function beatIntervalMs(hostDeadS: number): number {
  return Math.min(3000, Math.max(100, (hostDeadS * 1000) / 5));
}
