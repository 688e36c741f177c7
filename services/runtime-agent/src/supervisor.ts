import { rename, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { freePort, type AgentConfig, type HealthCheck, type Logger } from "@slipway/shared";
import type { AppLog } from "./app-log";
import type { AppSandbox } from "./app-sandbox";
import { AppProcess, type AppExit } from "./app-process";
import { printedNote, waitUntilHealthy, type HealthCriteria } from "./health";
import type { AppProcessNotes } from "./orphans";
import type { InstanceProxy } from "./proxy";
import type { TargetRelease } from "./target";
import { AgentStopping, sleep, throwIfStopping } from "./timeout";
import { TypedEvents } from "./typed-events";

/** How an app ended: `code 7`, `SIGKILL`, or the sandbox limit it hit. */
const exitNote = (exit: AppExit) => exit.limitReason ?? exit.signal ?? `code ${exit.code}`;

/** Crash restarts back off up to this long. */
const MAX_CRASH_BACKOFF_MS = 30_000;

/** How to start a release's app; the supervisor adds PORT. */
export interface LaunchSpec {
  appPath: string;
  /** The host cache tree the release directory lies over, when the app sees it as an overlay. */
  lower?: string;
  command: string;
  env: Record<string, string>;
  /** The app's own health check; the agent's HEALTH_PATH and HEALTH_TIMEOUT_S otherwise. */
  healthCheck?: HealthCheck;
}

export interface Running extends LaunchSpec {
  release: TargetRelease;
  process: AppProcess;
  port: number;
}

export interface ServingApp {
  release: TargetRelease;
  appPath: string;
  pid: number | undefined;
  /** When the serving process was started (ms). */
  startedAt: number;
}

export interface SupervisorEvents extends Record<string, unknown> {
  /** The app answers its health check and takes the traffic. */
  serving: ServingApp;
  /** The serving app exited; a restart follows after `reason`'s back-off. */
  crashed: { release: TargetRelease; appPath: string; reason: string };
  /** A restart after a crash failed its health check; the next one backs off further. */
  "restart-failed": { release: TargetRelease; appPath: string; reason: string };
}

/**
 * Runs the app of the serving release: each start (a new release, a restart after a crash) is
 * one launch: spawn, health check, then the proxy and `$RUNTIME_ROOT/current` switch to it.
 */
export class Supervisor {
  readonly events = new TypedEvents<SupervisorEvents>();
  private running: Running | undefined;
  private crashRestarts = 0;

  constructor(
    private readonly config: Pick<AgentConfig, "RUNTIME_ROOT" | "HEALTH_PATH" | "HEALTH_TIMEOUT_S">,
    private readonly proxy: InstanceProxy,
    private readonly sandbox: () => AppSandbox,
    private readonly appNotes: AppProcessNotes,
    private readonly appLog: AppLog,
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
  ) {}

  /** Crash restarts since the release started serving. */
  get restarts(): number {
    return this.crashRestarts;
  }

  get serving(): ServingApp | undefined {
    return this.running && { release: this.running.release, appPath: this.running.appPath, pid: this.running.process.pid, startedAt: this.running.process.startedAt };
  }

  /** The serving build is current under another version number. */
  relabel(release: TargetRelease): void {
    if (this.running) this.running.release = release;
  }

  /**
   * Launches `release` beside the serving one and moves the traffic to it; throws, leaving the
   * serving app as it was, when it does not come up. Returns the one it replaced, to retire.
   */
  async serve(release: TargetRelease, spec: LaunchSpec): Promise<Running | undefined> {
    const launched = await this.launch(spec, release);
    if (launched.error !== undefined) throw launched.error;
    const previous = this.running;
    this.crashRestarts = 0;
    await this.adopt({ ...launched.running, release });
    return previous;
  }

  /** Lets the requests in flight to a replaced app finish, then stops it. */
  async retire(previous: Running): Promise<void> {
    await this.proxy.drain(previous.port, 10_000);
    this.appLog.system(`stopping the replaced v${previous.release.version}`, previous.release.version);
    await previous.process.stop();
  }

  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    const { release, process: app } = this.running;
    this.appLog.system(`stopping v${release.version}: the agent is shutting down`, release.version);
    const exit = await app.stop(graceMs);
    this.appLog.system(`v${release.version} stopped (${exitNote(exit)})`, release.version);
  }

  /** Spawn → health check → switch. A failed launch's process is stopped and returned with the error. */
  private async launch(spec: LaunchSpec, release: TargetRelease): Promise<{ running: Omit<Running, "release">; error?: unknown }> {
    throwIfStopping(this.signal);
    const port = await freePort();
    const env = { ...spec.env, PORT: String(port) };
    this.appLog.system(`starting v${release.version} on port ${port}: ${spec.command}`, release.version);
    const app = this.spawn(spec, env, release);
    const running = { ...spec, env, port, process: app };
    try {
      const criteria = this.healthCriteria(spec.healthCheck);
      const host = this.sandbox().appAddress;
      await waitUntilHealthy(app, port, criteria, this.signal, host);
      this.appLog.system(`v${release.version} passed its health check (${criteria.path})`, release.version);
      await this.pointCurrentAt(spec.appPath);
      this.proxy.setUpstream(port, host);
      this.appLog.system(`traffic switched to v${release.version}`, release.version);
      return { running };
    } catch (error) {
      const abandoned = error instanceof AgentStopping;
      this.appLog.system(abandoned ? `start of v${release.version} abandoned: the agent is stopping` : `v${release.version} failed its health check: ${(error as Error).message}`, release.version);
      await app.stop(2000);
      return { running, error };
    }
  }

  /** Makes `running` the serving app; its exit is a crash from now on. */
  private async adopt(running: Running, restartFailure?: unknown): Promise<void> {
    this.running = running;
    this.watchForCrash(running);
    const { release, appPath } = running;
    if (restartFailure === undefined) await this.events.emit("serving", { release, appPath, pid: running.process.pid, startedAt: running.process.startedAt });
    else await this.events.emit("restart-failed", { release, appPath, reason: (restartFailure as Error).message });
  }

  /** A crash of the serving app restarts it with exponential backoff. */
  private watchForCrash(running: Running): void {
    void running.process.exited.then(async (exit) => {
      if (this.signal.aborted || this.running !== running) return;
      this.crashRestarts += 1;
      const delay = Math.min(MAX_CRASH_BACKOFF_MS, 500 * 2 ** (this.restarts - 1));
      const reason = `the app exited (${exitNote(exit)}); restart ${this.restarts} in ${delay} ms; ${printedNote(running.process)}`;
      this.logger.warn({ restarts: this.restarts }, reason);
      this.appLog.system(`crashed: ${reason}`, running.release.version);
      await this.events.emit("crashed", { release: running.release, appPath: running.appPath, reason });
      await sleep(delay);
      if (this.signal.aborted || this.running !== running) return;
      this.appLog.system(`restarting v${running.release.version} after a crash (restart ${this.restarts})`, running.release.version);
      const { appPath, lower, command, env, healthCheck } = running;
      const { running: restarted, error } = await this.launch({ appPath, command, env, ...(lower ? { lower } : {}), ...(healthCheck ? { healthCheck } : {}) }, running.release);
      // Even a failed restart is adopted: its exit starts the next, longer back-off.
      await this.adopt({ ...restarted, release: running.release }, error);
    });
  }

  private healthCriteria(check: HealthCheck | undefined): HealthCriteria {
    if (!check) return { path: this.config.HEALTH_PATH, timeoutMs: this.config.HEALTH_TIMEOUT_S * 1000, source: "HEALTH_PATH", anyStatus: true };
    return { path: check.path, timeoutMs: check.timeoutS * 1000, ...(check.expectText !== undefined ? { expectText: check.expectText } : {}), source: "the app's healthCheck" };
  }

  private spawn({ command, appPath, lower }: LaunchSpec, env: Record<string, string>, release: TargetRelease): AppProcess {
    const sandbox = this.sandbox();
    // A relabel moves the serving process to another version number: its lines follow it.
    const version = () => (this.running?.process === app ? this.running.release.version : release.version);
    const app: AppProcess = new AppProcess({
      command,
      cwd: appPath,
      env,
      sandbox: { spec: sandbox.spec(appPath, lower), mode: sandbox.mode },
      onLine: (line, stream) => this.appLog.output(stream, line, version()),
    });
    void this.appNotes.track(app);
    return app;
  }

  /** `$RUNTIME_ROOT/current` follows the live release, for operators' shells. */
  private async pointCurrentAt(appPath: string): Promise<void> {
    const link = path.join(this.config.RUNTIME_ROOT, "current");
    const temp = `${link}.tmp-${process.pid}`;
    await rm(temp, { force: true });
    await symlink(appPath, temp);
    await rename(temp, link);
  }
}
