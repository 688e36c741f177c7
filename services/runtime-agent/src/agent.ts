import { rm, symlink, rename } from "node:fs/promises";
import path from "node:path";
import type { Redis } from "ioredis";
import {
  AppRepository,
  currentReleasePointerSchema,
  freePort,
  InstanceRepository,
  ObjectNotFoundError,
  RELEASE_CHANNEL,
  releaseEventSchema,
  ReleaseRepository,
  RolloutRepository,
  STALE_INSTANCE_MS,
  recordKeys,
  storageKeys,
  type RolloutTurn,
  type AgentConfig,
  type InstanceReport,
  type InstanceState,
  type Logger,
  type ObjectStore,
} from "@slipway/shared";
import { HealthCheckError, printedNote, waitUntilHealthy } from "./health";
import { AppProcessNotes } from "./orphans";
import { InstanceProxy } from "./proxy";
import { Restorer, RestoreError } from "./restore";
import { serverWorkersEnvironment } from "./python-env";
import { NO_START_COMMAND, resolveStartCommand } from "./start-command";
import { requireInterpreter } from "./interpreter";
import { AppSandbox } from "./app-sandbox";
import { withShippedNodeTools } from "./node-path";
import { AppProcess } from "./supervisor";

const HEARTBEAT_INTERVAL_MS = 5000;
const ROLLOUT_POLL_MS = 300;
/** How long a failed release is left alone before a reconcile tries it again. */
const FAILED_RETRY_MS = 60_000;
/** Crash restarts back off up to this long. */
const MAX_CRASH_BACKOFF_MS = 30_000;

export interface TargetRelease {
  version: number;
  buildId: string;
}

interface Running {
  release: TargetRelease;
  appPath: string;
  process: AppProcess;
  port: number;
  command: string;
  env: Record<string, string>;
}

/**
 * One instance of one app: keeps the instance serving the app's current release. Reconciles on
 * start, on each release notification and on a timer; a new release is restored and started
 * beside the old one and takes traffic only after its health check passes.
 */
export class RuntimeAgent {
  private readonly proxy = new InstanceProxy();
  private readonly restorer: Restorer;
  private readonly apps: AppRepository;
  private readonly releases: ReleaseRepository;
  private readonly instances: InstanceRepository;
  private readonly rollouts: RolloutRepository;
  private readonly appNotes: AppProcessNotes;
  private running: Running | undefined;
  private state: InstanceState | undefined;
  private error: string | undefined;
  private failed: { version: number; at: number } | undefined;
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  private timers: NodeJS.Timeout[] = [];
  private subscriber: Redis | undefined;
  private crashRestarts = 0;
  private stopping = false;
  private readonly startedAt = Date.now();
  private sandbox: AppSandbox | undefined;
  listeningPort: number | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly redis: Redis,
    private readonly store: ObjectStore,
    private readonly logger: Logger,
  ) {
    this.restorer = new Restorer(store, config.RUNTIME_ROOT, config);
    const keys = recordKeys(config.QUEUE_PREFIX);
    this.apps = new AppRepository(redis, keys);
    this.releases = new ReleaseRepository(redis, keys);
    this.instances = new InstanceRepository(redis, keys);
    this.rollouts = new RolloutRepository(redis, keys);
    this.appNotes = new AppProcessNotes(config.RUNTIME_ROOT, logger);
  }

  async start(): Promise<void> {
    this.sandbox = await AppSandbox.prepare(this.config, this.logger);
    await this.appNotes.stopOrphans();
    const leftovers = await this.restorer.removeLeftovers();
    if (leftovers.length) this.logger.info({ leftovers }, "removed partial release directories left by an earlier run");
    this.listeningPort = await this.proxy.listen(this.config.PORT);
    this.logger.info({ port: this.listeningPort }, `instance ${this.config.INSTANCE_ID} of ${this.config.APP} listening on port ${this.listeningPort}`);

    // The subscriber waits out Redis outages (queues its SUBSCRIBE) instead of failing fast.
    this.subscriber = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    this.subscriber.on("message", (_channel, message) => {
      const event = releaseEventSchema.safeParse(safeJson(message));
      if (event.success && event.data.app === this.config.APP) {
        this.logger.info({ version: event.data.version }, "release notification");
        this.failed = undefined;
        void this.reconcile();
      }
    });
    this.subscriber.on("error", () => undefined); // reconnects by itself; the timer covers the gap
    void this.subscriber.subscribe(RELEASE_CHANNEL).catch((error) => this.logger.warn({ err: error }, "could not subscribe to release events"));

    this.timers.push(setInterval(() => void this.reconcile(), this.config.RECONCILE_INTERVAL_S * 1000).unref());
    this.timers.push(setInterval(() => void this.heartbeat(), HEARTBEAT_INTERVAL_MS).unref());
    await this.reconcile();
  }

  /** Brings the instance to the app's current release; concurrent calls coalesce into one more pass. */
  reconcile(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.reconcileAgain = false;
        try {
          await this.reconcileOnce();
        } catch (error) {
          this.logger.error({ err: error }, "reconcile failed");
        }
      } while (this.reconcileAgain && !this.stopping);
    })().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const target = await this.currentRelease();
    if (!target) return;
    if (this.running && this.running.release.buildId === target.buildId) {
      if (this.running.release.version !== target.version) {
        this.running.release = target;
        await this.report("running");
      }
      return;
    }
    if (this.failed?.version === target.version && Date.now() - this.failed.at < FAILED_RETRY_MS) return;
    await this.moveTo(target);
  }

  /** The release to run: Redis's current pointer, or the copy in storage when Redis is down. */
  async currentRelease(): Promise<TargetRelease | undefined> {
    try {
      const release = await withTimeout(this.releases.current(this.config.APP), 3000);
      return release ? { version: release.version, buildId: release.buildId } : undefined;
    } catch (error) {
      this.logger.warn({ err: error }, "Redis unavailable: reading the current release from storage");
      try {
        const pointer = currentReleasePointerSchema.parse(JSON.parse(await this.store.getText(storageKeys.currentRelease(this.config.APP))));
        return { version: pointer.version, buildId: pointer.buildId };
      } catch (storageError) {
        if (storageError instanceof ObjectNotFoundError) return undefined;
        throw storageError;
      }
    }
  }

  private async moveTo(target: TargetRelease): Promise<void> {
    const log = this.logger.child({ version: target.version, buildId: target.buildId });
    let candidate: AppProcess | undefined;
    // An instance that serves nothing yet has no availability to protect: it joins no queue.
    const coordinated = this.running !== undefined;
    try {
      await this.report("restoring", target);
      const started = Date.now();
      const restored = await this.restorer.restore(this.config.APP, target.buildId);
      log.info({ appPath: restored.appPath, reused: restored.reused, ms: Date.now() - started }, restored.reused ? "release already restored" : "release restored");
      await requireInterpreter(restored.manifest, this.appSandbox);

      if (coordinated) {
        const turn = await this.waitForTurn(target);
        if (turn === "superseded") return;
        if (turn === "halted") {
          this.failed = { version: target.version, at: Date.now() };
          log.warn("rollout halted: the release failed on the first instance; keeping the current release");
          await this.report("running", undefined, undefined, `rollout of v${target.version} halted: it failed on the first instance`);
          return;
        }
      }

      await this.report("starting", target, restored.appPath);
      const appRecord = await withTimeout(this.apps.get(this.config.APP), 3000).catch(() => undefined);
      const command = await resolveStartCommand(restored.appPath, restored.manifest, appRecord?.startupCommand);
      if (!command) throw new RestoreError(NO_START_COMMAND);
      const port = await freePort();
      await this.appSandbox.own(restored.appPath);
      const env = withShippedNodeTools(this.appEnvironment(restored.appPath, restored.manifest.virtualEnvName, port, appRecord?.env ?? {}), restored.appPath, restored.manifest);
      candidate = this.spawn(command, restored.appPath, env, log);
      await waitUntilHealthy(candidate, port, this.config.HEALTH_PATH, this.config.HEALTH_TIMEOUT_S * 1000);

      const previous = this.running;
      this.running = { release: target, appPath: restored.appPath, process: candidate, port, command, env };
      this.watchForCrash(this.running);
      this.proxy.setUpstream(port);
      this.failed = undefined;
      this.crashRestarts = 0;
      await this.pointCurrentAt(restored.appPath);
      await this.report("running");
      log.info({ command, pid: candidate.pid }, "release serving");
      await this.finishRollout(target, true);
      if (previous) {
        await this.proxy.drain(previous.port, 10_000);
        await previous.process.stop();
      }
      const pruned = await this.restorer.prune(this.config.KEEP_RELEASES, [restored.appPath]);
      if (pruned.length) log.info({ pruned }, "removed old release directories");
    } catch (error) {
      await candidate?.stop(2000);
      const deterministic = error instanceof RestoreError || error instanceof HealthCheckError;
      const reason = deterministic ? error.message : `restore failed: ${(error as Error).message}`;
      // A release that cannot work waits a minute before another try; an outage is retried at the next reconcile.
      if (deterministic) this.failed = { version: target.version, at: Date.now() };
      log.warn({ reason }, this.running ? "release failed; the previous release keeps serving" : "release failed");
      await this.report("failed", target, undefined, reason);
      await this.finishRollout(target, false);
    }
  }

  /**
   * Waits for this instance's turn to switch to `target` (MAX_UNAVAILABLE at a time, the first
   * alone); gives up when a newer release becomes current meanwhile.
   */
  private async waitForTurn(target: TargetRelease): Promise<RolloutTurn | "superseded"> {
    const leaseMs = this.config.HEALTH_TIMEOUT_S * 1000 + 60_000;
    for (;;) {
      if (this.stopping) return "superseded";
      const current = await this.currentRelease().catch(() => target);
      if (current && current.version !== target.version) return "superseded";
      try {
        const turn = await this.rollouts.acquire(this.config.APP, target.version, this.config.INSTANCE_ID, this.config.MAX_UNAVAILABLE, leaseMs);
        if (turn !== "wait") return turn;
      } catch (error) {
        // Without Redis there is no one to coordinate with: switch rather than wait for ever.
        this.logger.warn({ err: error }, "rollout coordination unavailable; switching without it");
        return "go";
      }
      await new Promise((r) => setTimeout(r, ROLLOUT_POLL_MS));
    }
  }

  private async finishRollout(target: TargetRelease, ok: boolean): Promise<void> {
    try {
      let everyInstanceDone = false;
      if (ok) {
        const fresh = (await this.instances.list(this.config.APP)).filter((i) => Date.now() - Date.parse(i.lastHeartbeatAt) < STALE_INSTANCE_MS);
        everyInstanceDone = fresh.every((i) => i.release === target.version && i.state === "running");
      }
      await this.rollouts.finish(this.config.APP, target.version, this.config.INSTANCE_ID, ok, everyInstanceDone);
    } catch (error) {
      this.logger.warn({ err: error }, "could not record the rollout outcome");
    }
  }

  private spawn(command: string, appPath: string, env: Record<string, string>, log: Logger): AppProcess {
    const sandbox = this.appSandbox;
    const app = new AppProcess({ command, cwd: appPath, env, sandbox: { spec: sandbox.spec(appPath), mode: sandbox.mode }, onLine: (line) => log.debug({ app: line }, "app output") });
    void this.appNotes.track(app);
    return app;
  }

  private get appSandbox(): AppSandbox {
    if (!this.sandbox) throw new Error("the agent has not started");
    return this.sandbox;
  }

  private appEnvironment(appPath: string, venvName: string | undefined, port: number, appEnv: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {
      PATH: this.appSandbox.path,
      // The release directory is all the app may write; its home is there too, as Heroku's /app.
      HOME: appPath,
      LANG: process.env.LANG ?? "C.UTF-8",
      PYTHONUNBUFFERED: "1",
      ...appEnv,
      ...serverWorkersEnvironment(appEnv),
      APP_PATH: appPath,
      PORT: String(port),
    };
    if (venvName) {
      env.VIRTUAL_ENV = path.join(appPath, venvName);
      env.PATH = `${path.join(env.VIRTUAL_ENV, "bin")}:${env.PATH}`;
    }
    return env;
  }

  /** A crash of the serving app restarts it with exponential backoff; each crash is reported. */
  private watchForCrash(running: Running) {
    void running.process.exited.then(async (exit) => {
      if (this.stopping || this.running !== running) return;
      this.crashRestarts += 1;
      const delay = Math.min(MAX_CRASH_BACKOFF_MS, 500 * 2 ** (this.crashRestarts - 1));
      const reason = `the app exited (${exit.limitReason ?? exit.signal ?? `code ${exit.code}`}); restart ${this.crashRestarts} in ${delay} ms; ${printedNote(running.process)}`;
      this.logger.warn({ restarts: this.crashRestarts }, reason);
      await this.report("failed", running.release, running.appPath, reason);
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopping || this.running !== running) return;
      const port = await freePort();
      const env = { ...running.env, PORT: String(port) };
      const restarted = this.spawn(running.command, running.appPath, env, this.logger);
      try {
        await waitUntilHealthy(restarted, port, this.config.HEALTH_PATH, this.config.HEALTH_TIMEOUT_S * 1000);
        this.running = { ...running, process: restarted, port, env };
        this.proxy.setUpstream(port);
        this.watchForCrash(this.running);
        await this.report("running");
      } catch (error) {
        await restarted.stop(2000);
        this.running = { ...running, process: restarted, port, env };
        this.watchForCrash(this.running);
        await this.report("failed", running.release, running.appPath, (error as Error).message);
      }
    });
  }

  /** `$RUNTIME_ROOT/current` follows the live release, for operators' shells. */
  private async pointCurrentAt(appPath: string): Promise<void> {
    const link = path.join(this.config.RUNTIME_ROOT, "current");
    const temp = `${link}.tmp-${process.pid}`;
    await rm(temp, { force: true });
    await symlink(appPath, temp);
    await rename(temp, link);
  }

  private async report(state: InstanceState, release?: TargetRelease, appPath?: string, error?: string): Promise<void> {
    this.state = state;
    this.error = error;
    if (state === "running" && this.running) {
      release = this.running.release;
      appPath = this.running.appPath;
    }
    this.reported = { release: release ?? this.running?.release, appPath: appPath ?? this.running?.appPath };
    await this.heartbeat();
  }

  private reported: { release?: TargetRelease; appPath?: string } = {};

  snapshot(): InstanceReport | undefined {
    if (!this.state) return undefined;
    return {
      instanceId: this.config.INSTANCE_ID,
      release: this.reported.release?.version ?? null,
      buildId: this.reported.release?.buildId ?? null,
      state: this.state,
      appPath: this.reported.appPath ?? null,
      lastHeartbeatAt: new Date().toISOString(),
      pid: this.running?.process.pid ?? null,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      restarts: this.crashRestarts,
      ...(this.error ? { error: this.error } : {}),
    };
  }

  private async heartbeat(): Promise<void> {
    const snapshot = this.snapshot();
    if (!snapshot) return;
    try {
      await withTimeout(this.instances.report(this.config.APP, snapshot), 3000);
    } catch (error) {
      this.logger.debug({ err: error }, "could not report state");
    }
  }

  /**
   * Graceful stop: no new connections, requests in flight finish (up to `drainMs`), then the app
   * gets SIGTERM and, after `appGraceMs`, SIGKILL.
   */
  async stop(drainMs = 10_000, appGraceMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    await this.reconciling?.catch(() => undefined);
    await this.proxy.close(drainMs);
    if (this.running) await this.running.process.stop(appGraceMs);
    this.subscriber?.disconnect();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}
