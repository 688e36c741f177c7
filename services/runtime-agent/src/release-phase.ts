import type { AgentConfig, Logger, ReleasePhase, ReleasePhaseRepository } from "@slipway/shared";
import type { AppLog } from "./app-log";
import { AppProcess, type AppExit } from "./app-process";
import type { AppSandbox } from "./app-sandbox";
import type { AppProcessNotes } from "./orphans";
import type { LaunchSpec } from "./supervisor";
import type { TargetRelease } from "./target";
import { CoordinationOutage } from "./coordination";
import { AgentStopping, sleep, throwIfStopping } from "./timeout";

const POLL_MS = 300;
/** The release record keeps this much of the command's output; the app log has all of it. */
const TAIL_LINES = 20;
const TAIL_CHARS = 4000;
/** A claim outlives the command's timeout by this much, so only a dead agent's claim lapses. */
const CLAIM_MARGIN_MS = 60_000;

/** The release command failed (exit, signal, timeout): the release cannot serve. */
export class ReleasePhaseError extends Error {}

/** Another instance's release command neither finished nor lapsed in time: try again later. */
export class ReleasePhasePending extends Error {}

export interface ReleasePhaseParts {
  phases: Pick<ReleasePhaseRepository, "claim" | "outcome" | "record" | "giveBack">;
  sandbox: () => AppSandbox;
  appNotes: Pick<AppProcessNotes, "track">;
  appLog: AppLog;
  /** The agent's lifetime: once aborted, a wait gives up and a running command is stopped. */
  signal?: AbortSignal;
}

/**
 * A release's release command (migrations), run once per release before any instance starts it.
 * The rollout's canary gets here first and alone; but instances that serve nothing yet join no
 * rollout queue, so the turn alone cannot make it "once": a claim per app and version (SET NX,
 * leased) picks the one instance that runs it, and the outcome on the release record tells every
 * other instance, and a restarted one, not to run it again but to follow it.
 */
export class ReleasePhaseRunner {
  constructor(
    private readonly config: Pick<AgentConfig, "APP" | "INSTANCE_ID" | "RELEASE_COMMAND_TIMEOUT_S" | "COORDINATION_TIMEOUT_S">,
    private readonly parts: ReleasePhaseParts,
    private readonly logger: Logger,
    private readonly pollMs = POLL_MS,
  ) {}

  /** Resolves once `release`'s release command succeeded (here or elsewhere); throws when it failed. */
  async ensure(release: TargetRelease, spec: LaunchSpec, command: string | undefined): Promise<void> {
    if (!command) return;
    const { APP, INSTANCE_ID, RELEASE_COMMAND_TIMEOUT_S } = this.config;
    const leaseMs = RELEASE_COMMAND_TIMEOUT_S * 1000 + CLAIM_MARGIN_MS;
    const deadline = Date.now() + 2 * leaseMs;
    const outage = new CoordinationOutage("release phase coordination", this.config.COORDINATION_TIMEOUT_S, this.logger);
    for (;;) {
      throwIfStopping(this.parts.signal);
      let outcome: ReleasePhase | undefined;
      try {
        outcome = await this.parts.phases.outcome(APP, release.version);
        outage.answered();
        if (!outcome && (await this.parts.phases.claim(APP, release.version, INSTANCE_ID, leaseMs))) {
          outcome = await this.run(release, spec, command);
          // Unrecorded, the outcome still decides here; the others run it again once the claim lapses.
          await this.parts.phases.record(APP, release.version, outcome).catch((error) => this.logger.warn({ err: error }, "could not record the release phase outcome"));
        }
      } catch (error) {
        if (error instanceof AgentStopping) throw error;
        // Unknown is not succeeded: the command may not have run, or may have failed on the
        // canary. Wait for Redis, bounded, then fail the move (the reconciler tries it again).
        outage.failed(error);
        await sleep(this.pollMs, this.parts.signal);
        continue;
      }
      if (outcome?.state === "succeeded") return;
      if (outcome) throw new ReleasePhaseError(`the release command failed (${outcome.error ?? `exit code ${outcome.exitCode}`}) on ${outcome.instanceId}${outcome.outputTail ? `: ${outcome.outputTail.split("\n").slice(-3).join(" | ")}` : ""}`);
      if (Date.now() > deadline) throw new ReleasePhasePending(`the release command of v${release.version} on another instance did not finish in time`);
      await sleep(this.pollMs, this.parts.signal);
    }
  }

  private async run(release: TargetRelease, spec: LaunchSpec, command: string): Promise<ReleasePhase> {
    const { appLog } = this.parts;
    const timeoutS = this.config.RELEASE_COMMAND_TIMEOUT_S;
    appLog.system(`release phase of v${release.version}: ${command}`, release.version);
    this.logger.info({ version: release.version, command }, "running the release command");
    const sandbox = this.parts.sandbox();
    const child = new AppProcess({
      command,
      cwd: spec.appPath,
      env: spec.env,
      sandbox: { spec: sandbox.spec(spec.appPath, spec.lower), mode: sandbox.mode },
      onLine: (line, stream) => appLog.output(stream, line, release.version),
    });
    void this.parts.appNotes.track(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void child.stop(5000);
    }, timeoutS * 1000);
    const { signal } = this.parts;
    const interrupt = () => void child.stop(5000);
    signal?.addEventListener("abort", interrupt, { once: true });
    if (signal?.aborted) interrupt();
    const exit: AppExit = await child.exited.finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", interrupt);
    });
    if (signal?.aborted) {
      // Interrupted is not failed: no outcome is recorded, and the claim goes back so the next
      // instance runs the command at once instead of after the lease.
      appLog.system(`release phase of v${release.version} interrupted: the agent is stopping`, release.version);
      await appLog.flush();
      await this.parts.phases.giveBack(this.config.APP, release.version, this.config.INSTANCE_ID).catch((error) => this.logger.warn({ err: error }, "could not give the release command claim back"));
      throw new AgentStopping();
    }
    const error = timedOut ? `timed out after ${timeoutS} s` : (exit.limitReason ?? (exit.signal ? `ended by ${exit.signal}` : undefined));
    const state = !error && exit.code === 0 ? "succeeded" : "failed";
    const note = error ?? `exit code ${exit.code}`;
    appLog.system(`release phase of v${release.version} ${state} (${note})`, release.version);
    // Whoever sees the outcome recorded (an operator, the other instances) can read the command's output in the app's log.
    await appLog.flush();
    return {
      state,
      command,
      exitCode: exit.code,
      instanceId: this.config.INSTANCE_ID,
      finishedAt: new Date().toISOString(),
      ...(error ? { error } : {}),
      outputTail: child.tail(TAIL_LINES).slice(-TAIL_CHARS),
    };
  }
}
