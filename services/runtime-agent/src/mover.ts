import { hostCacheDir, launchConfigKey, type AgentConfig, type AppRecord, type AppRepository, type Logger } from "@slipway/shared";
import type { AppLog } from "./app-log";
import type { AppSandbox } from "./app-sandbox";
import { HealthCheckError } from "./health";
import type { Heartbeat } from "./heartbeat";
import { requireInterpreter } from "./interpreter";
import { launchSpec } from "./launch-spec";
import type { MoveOutcome, ReleaseRunner } from "./reconciler";
import { ReleasePhaseError, ReleasePhasePending, type ReleasePhaseRunner } from "./release-phase";
import { RestoreError, type Restorer } from "./restore";
import type { RolloutTurns } from "./rollout";
import { resolveReleaseCommand } from "./start-command";
import type { Running, Supervisor } from "./supervisor";
import type { TargetRelease } from "./target";
import { AgentStopping, throwIfStopping, withTimeout } from "./timeout";
import { CoordinationUnavailable } from "./coordination";

export interface MoverParts {
  restorer: Restorer;
  apps: Pick<AppRepository, "get">;
  rollout: RolloutTurns;
  supervisor: Supervisor;
  heartbeat: Heartbeat;
  sandbox: () => AppSandbox;
  appLog: AppLog;
  releasePhase: ReleasePhaseRunner;
  /** The agent's lifetime: once aborted, the move gives up where it stands. */
  signal?: AbortSignal;
}

/**
 * Moves the instance to a release: restore, wait for a rollout turn, launch it beside the
 * serving one, and only then retire the old one, so a release that fails leaves the old serving.
 */
export class ReleaseMover implements ReleaseRunner {
  /** The launch settings (`launchConfigKey`) the serving process was started with. */
  private servingConfig: string | undefined;

  constructor(
    private readonly config: Pick<AgentConfig, "APP" | "KEEP_RELEASES" | "RELEASE_COMMAND_TIMEOUT_S" | "RUNTIME_ROOT">,
    private readonly parts: MoverParts,
    private readonly logger: Logger,
  ) {}

  serving(): TargetRelease | undefined {
    return this.parts.supervisor.serving?.release;
  }

  async relabel(target: TargetRelease): Promise<void> {
    this.parts.supervisor.relabel(target);
    await this.parts.heartbeat.report("running");
  }

  async configChanged(): Promise<boolean> {
    // Without Redis the settings cannot be read: keep the process that serves.
    const app = await this.readApp();
    return app !== undefined && launchConfigKey(app) !== this.servingConfig;
  }

  async moveTo(target: TargetRelease): Promise<MoveOutcome> {
    const { restorer, rollout, supervisor, heartbeat, appLog } = this.parts;
    const log = this.logger.child({ version: target.version, buildId: target.buildId });
    // An instance that serves nothing yet has no availability to protect: it joins no queue.
    const coordinated = supervisor.serving !== undefined;
    let previous: Running | undefined;
    let appPath: string;
    try {
      log.info("moving to the release: restoring it");
      await heartbeat.report("restoring", target);
      appLog.system(`restoring v${target.version} (build ${target.buildId})`, target.version);
      const started = Date.now();
      const restored = await whileReportingSlowness(log, `restore of v${target.version}`, (onStage) =>
        restorer.restore(this.config.APP, target.buildId, onStage, this.parts.sandbox().overlay ? "overlay" : "copy", (dir, overlaid) => this.parts.sandbox().own(dir, overlaid)),
      );
      appPath = restored.appPath;
      log.info({ appPath, reused: restored.reused, ms: Date.now() - started }, restored.reused ? "release already restored" : "release restored");
      appLog.system(restored.reused ? `v${target.version} was already restored` : `v${target.version} restored in ${Date.now() - started} ms`, target.version);
      throwIfStopping(this.parts.signal);
      await requireInterpreter(restored.manifest, this.parts.sandbox(), this.config.RUNTIME_ROOT, [this.config.RUNTIME_ROOT, hostCacheDir(this.config)]);

      // Read before the turn: the app's health check timeout sets how long the turn is held.
      const appRecord = await this.readApp();
      const releaseCommand = await resolveReleaseCommand(restored.lower ?? appPath, appRecord?.releaseCommand);
      // Prepared before the turn (the release directory handed to the app's uid, its environment):
      // a turn holds only what must happen one instance at a time, the start and the switch.
      const spec = await launchSpec(restored, this.parts.sandbox(), appRecord);
      if (coordinated) {
        // The canary runs the release command while holding its turn: the lease covers that too.
        const releaseS = releaseCommand ? this.config.RELEASE_COMMAND_TIMEOUT_S : 0;
        const turn = await rollout.waitForTurn(target, appRecord?.healthCheck?.timeoutS, releaseS);
        if (turn === "superseded") return "superseded";
        if (turn === "halted") {
          log.warn("rollout halted: the release failed on the first instance; keeping the current release");
          appLog.system(`rollout of v${target.version} halted: it failed on the first instance; keeping the current release`, target.version);
          await heartbeat.report("running", undefined, undefined, `rollout of v${target.version} halted: it failed on the first instance`);
          return "halted";
        }
      }

      await heartbeat.report("starting", target, appPath);
      // Before any instance switches: the canary (or, on a first deploy, one claimant) runs it, the rest follow its outcome.
      await this.parts.releasePhase.ensure(target, spec, releaseCommand);
      previous = await supervisor.serve(target, spec);
      this.servingConfig = launchConfigKey(appRecord);
      log.info({ command: spec.command, pid: supervisor.serving?.pid }, "release serving");
    } catch (error) {
      if (error instanceof AgentStopping || this.parts.signal?.aborted) {
        log.info("release move abandoned: the agent is stopping");
        appLog.system(`move to v${target.version} abandoned: the agent is stopping`, target.version);
        if (coordinated) await rollout.abandon(target);
        return "superseded";
      }
      const deterministic = error instanceof RestoreError || error instanceof HealthCheckError || error instanceof ReleasePhaseError;
      const reason = deterministic || error instanceof ReleasePhasePending || error instanceof CoordinationUnavailable ? (error as Error).message : `restore failed: ${(error as Error).message}`;
      log.warn({ reason }, supervisor.serving ? "release failed; the previous release keeps serving" : "release failed");
      appLog.system(`v${target.version} failed: ${reason}${supervisor.serving ? `; v${supervisor.serving.release.version} keeps serving` : ""}`, target.version);
      await heartbeat.report("failed", target, undefined, reason);
      await rollout.finish(target, false);
      // A release that cannot work waits before another try; an outage is retried at the next reconcile.
      return deterministic ? "broken" : "unavailable";
    }

    await rollout.finish(target, true);
    try {
      if (previous) await supervisor.retire(previous);
      const pruned = await restorer.prune(this.config.KEEP_RELEASES, [appPath]);
      if (pruned.length) log.info({ pruned }, "removed old release directories");
    } catch (error) {
      log.warn({ err: error }, "could not clean up after the switch; the new release serves");
    }
    return "serving";
  }

  private readApp(): Promise<AppRecord | undefined> {
    return withTimeout(this.parts.apps.get(this.config.APP), 3000).catch(() => undefined);
  }
}

/** How often a step still under way is logged, with what it is doing. */
const SLOW_STEP_REPORT_MS = 15_000;

/**
 * Runs `step`, logging every SLOW_STEP_REPORT_MS while it is still running, with the stage it
 * last reported: a restore held up (a stalled store, another agent's extraction) says where.
 */
async function whileReportingSlowness<T>(log: Logger, what: string, step: (onStage: (stage: string) => void) => Promise<T>): Promise<T> {
  const started = Date.now();
  let stage = "starting";
  const timer = setInterval(() => log.info({ stage, ms: Date.now() - started }, `${what} still running: ${stage}`), SLOW_STEP_REPORT_MS);
  try {
    return await step((next) => (stage = next));
  } finally {
    clearInterval(timer);
  }
}
