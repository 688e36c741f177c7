import type { Redis } from "ioredis";
import { AppLogStream, AppRepository, BuildRepository, InstanceRepository, recordKeys, ReleasePhaseRepository, ReleaseRepository, RolloutRepository, RouterRepository, type AgentConfig, type InstanceReport, type Logger, type ObjectStore } from "@slipway/shared";
import { AppLog } from "./app-log";
import { AppSandbox, appDataPath } from "./app-sandbox";
import { Heartbeat } from "./heartbeat";
import { ReleaseMover } from "./mover";
import { AppProcessNotes } from "./orphans";
import { InstanceProxy } from "./proxy";
import { Reconciler } from "./reconciler";
import { ReleasePhaseRunner } from "./release-phase";
import { ReleaseWritesWatch } from "./release-writes";
import { subscribeToAppEvents, type Subscription } from "./release-notifications";
import { Restorer } from "./restore";
import { RolloutTurns, TurnFreedSignal } from "./rollout";
import { Supervisor } from "./supervisor";
import { CurrentReleaseTarget, type TargetRelease } from "./target";
import { withTimeout } from "./timeout";

export type { TargetRelease } from "./target";

/**
 * One instance of one app: keeps the instance serving the app's current release. A new release
 * is restored and started beside the old one and takes traffic only after its health check passes.
 */
export class RuntimeAgent {
  private readonly lifetime = new AbortController();
  private readonly turnFreed = new TurnFreedSignal();
  private readonly restorer: Restorer;
  private readonly appNotes: AppProcessNotes;
  private readonly target: CurrentReleaseTarget;
  private readonly supervisor: Supervisor;
  private readonly heartbeat: Heartbeat;
  private readonly releaseWrites: ReleaseWritesWatch;
  private readonly reconciler: Reconciler;
  private readonly appLog: AppLog;
  private readonly routers: RouterRepository;
  private notifications: Subscription | undefined;
  private sandbox: AppSandbox | undefined;
  listeningPort: number | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly redis: Redis,
    store: ObjectStore,
    private readonly logger: Logger,
    /** The instance's port; main opens it before loading the rest of the agent. */
    private readonly proxy = new InstanceProxy(),
    hooks: { onFenced?: () => void } = {},
  ) {
    const keys = recordKeys(config.QUEUE_PREFIX);
    const builds = new BuildRepository(redis, keys);
    this.routers = new RouterRepository(redis, keys);
    this.restorer = new Restorer(store, config, logger, this.lifetime.signal, (buildId) => pinnedOutputRecord(builds, buildId, logger));
    this.appNotes = new AppProcessNotes(config.RUNTIME_ROOT, logger);
    this.target = new CurrentReleaseTarget(config.APP, new ReleaseRepository(redis, keys), store, logger);
    const sandbox = () => this.appSandbox;
    const instances = new InstanceRepository(redis, keys);
    this.appLog = new AppLog(new AppLogStream(redis, keys), config, logger);
    this.supervisor = new Supervisor(config, this.proxy, sandbox, this.appNotes, this.appLog, this.lifetime.signal, logger);
    this.heartbeat = new Heartbeat(config, instances, this.supervisor, logger, hooks.onFenced);
    this.releaseWrites = new ReleaseWritesWatch(this.supervisor.events, this.appLog, appDataPath(config.RUNTIME_ROOT), logger);
    const rollout = new RolloutTurns(config, new RolloutRepository(redis, keys), instances, this.target, logger, { signal: this.lifetime.signal, turnFreed: this.turnFreed });
    const { signal } = this.lifetime;
    const releasePhase = new ReleasePhaseRunner(config, { phases: new ReleasePhaseRepository(redis, keys), sandbox, appNotes: this.appNotes, appLog: this.appLog, signal }, logger);
    const moverParts = { restorer: this.restorer, apps: new AppRepository(redis, keys), rollout, supervisor: this.supervisor, heartbeat: this.heartbeat, sandbox, appLog: this.appLog, releasePhase, signal };
    const mover = new ReleaseMover(config, moverParts, logger);
    this.reconciler = new Reconciler(this.target, mover, logger);
  }

  /**
   * Opens the instance's port: it answers 503 until a release serves. Done first, before anything
   * slow, so a load balancer or health check sees a live instance as soon as the process runs.
   */
  async listen(): Promise<number> {
    if (this.listeningPort === undefined) {
      this.listeningPort = this.proxy.port ?? (await this.proxy.listen(this.config.PORT));
      this.logger.info({ port: this.listeningPort }, `instance ${this.config.INSTANCE_ID} of ${this.config.APP} listening on port ${this.listeningPort}`);
    }
    return this.listeningPort;
  }

  /** `redisSettled`: what to wait for before the first reconcile (Redis connected, or given up on for now). */
  async start(redisSettled?: Promise<void>): Promise<void> {
    await this.listen();
    this.sandbox = await AppSandbox.prepare(this.config, this.logger);
    await this.appNotes.stopOrphans();
    await this.sandbox.removeOverlayLeftovers();
    const leftovers = await this.restorer.removeLeftovers();
    if (leftovers.length) this.logger.info({ leftovers }, "removed partial release directories left by an earlier run");
    this.notifications = subscribeToAppEvents(this.redis, this.config.APP, this.logger, {
      onRelease: (version) => this.reconciler.notified(version),
      onTurnFreed: () => this.turnFreed.notify(),
    });
    await redisSettled;
    if (this.lifetime.signal.aborted) return; // stopped while starting: nothing more to begin
    this.heartbeat.start();
    this.releaseWrites.start(this.config.APP_PATH_WRITES_CHECK_S * 1000);
    await this.reconciler.start(this.config.RECONCILE_INTERVAL_S * 1000);
  }

  /** Brings the instance to the app's current release; concurrent calls coalesce into one more pass. */
  reconcile(): Promise<void> {
    return this.reconciler.reconcile();
  }

  /** The release to run: Redis's current pointer, or the copy in storage when Redis is down. */
  currentRelease(): Promise<TargetRelease | undefined> {
    return this.target.current();
  }

  /** Looks now for files the serving app wrote under its APP_PATH (as the interval does). */
  releaseWritesChecked(): Promise<void> {
    return this.releaseWrites.check();
  }

  snapshot(): InstanceReport | undefined {
    return this.heartbeat.snapshot();
  }

  /**
   * Graceful stop, resolving to how its drain went: the instance leaves the front door (every router's Caddy stops sending it
   * requests), then no new connections, requests in flight finish (up to `drainMs`), then the app
   * gets SIGTERM and, after `appGraceMs`, SIGKILL.
   */
  async stop(drainMs = 10_000, appGraceMs = 10_000): Promise<Drain> {
    const started = Date.now();
    this.lifetime.abort();
    await this.leaveFrontDoor(drainMs);
    this.heartbeat.stop();
    this.releaseWrites.stop();
    await this.reconciler.stop();
    const cut = await this.proxy.close(drainMs);
    const drain = { seconds: (Date.now() - started) / 1000, cut };
    await this.supervisor.stop(appGraceMs);
    await this.sandbox?.close().catch((error: unknown) => this.logger.warn({ err: error }, "could not remove the instance's network"));
    this.notifications?.close();
    await this.appLog.flush();
    await this.restorer.settled();
    return drain;
  }

  /**
   * Reports the instance draining and waits (at most `timeoutMs`) until every live router serves
   * records read after that: from then on no front door sends it a new request. An instance only
   * a host agent runs is routed; with Redis unreachable there is no router to wait for.
   */
  private async leaveFrontDoor(timeoutMs: number): Promise<void> {
    if (!this.config.HOST_ID || !this.heartbeat.snapshot() || timeoutMs <= 0) return;
    const started = Date.now();
    try {
      await withTimeout(this.heartbeat.report("draining"), 3000);
      const since = await withTimeout(this.routers.now(), 3000);
      const caughtUp = await withTimeout(this.routers.waitCaughtUp(since, timeoutMs), timeoutMs + 3000);
      if (caughtUp) this.logger.info({ ms: Date.now() - started }, "left the front door: no router sends this instance new requests");
      else this.logger.warn({ timeoutMs }, "a router did not drop this instance in time; stopping anyway");
    } catch (error) {
      this.logger.warn({ err: error }, "could not leave the front door through Redis; stopping anyway");
    }
  }

  private get appSandbox(): AppSandbox {
    if (!this.sandbox) throw new Error("the agent has not started");
    return this.sandbox;
  }
}

/** How an instance's stop drained it: from the stop to its last request answered (or cut). */
export interface Drain {
  seconds: number;
  /** Requests still in flight when the drain time ran out. */
  cut: number;
}

/** How long a restore waits for Redis to say what the worker pinned before restoring the vetted way. */
const PIN_LOOKUP_MS = 2000;

/** The build record's pinned output record; undefined (the vetted restore) when Redis cannot say in time. */
async function pinnedOutputRecord(builds: BuildRepository, buildId: string, logger: Logger): Promise<string | undefined> {
  try {
    return (await withTimeout(builds.get(buildId), PIN_LOOKUP_MS))?.outputRecordSha256;
  } catch (error) {
    logger.warn({ err: error, buildId }, "could not read the build record: restoring the artifact the vetted way");
    return undefined;
  }
}
