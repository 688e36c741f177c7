import { STALE_INSTANCE_MS, type AgentConfig, type InstanceRepository, type Logger, type RolloutRepository, type RolloutTurn } from "@slipway/shared";
import type { TargetRelease, TargetSource } from "./target";
import { CoordinationOutage } from "./coordination";
import { sleep } from "./timeout";

const ROLLOUT_POLL_MS = 300;

export type TurnOutcome = Exclude<RolloutTurn, "wait"> | "superseded";

export interface RolloutOptions {
  /** Once aborted, a wait for a turn gives up (as superseded). */
  signal?: AbortSignal;
  pollMs?: number;
  /** Ends a wait between polls early when another instance gives its turn back. */
  turnFreed?: TurnFreedSignal;
}

/**
 * Wakes the instances waiting for a rollout turn as soon as one is given back, so an 8-instance
 * rollout does not spend half a poll interval per turn doing nothing. Events can be missed, so
 * waiters still poll.
 */
export class TurnFreedSignal {
  private readonly waiters = new Set<() => void>();

  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Resolves on the next `notify()` or after `ms`, whichever comes first. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiters.add(wake);
    });
  }
}

/**
 * This instance's part in a rolling rollout: MAX_UNAVAILABLE instances switch at a time, the
 * first alone, and a release failing on the first halts the rollout for the others.
 */
export class RolloutTurns {
  private readonly pollMs: number;

  constructor(
    private readonly config: Pick<AgentConfig, "APP" | "INSTANCE_ID" | "MAX_UNAVAILABLE" | "HEALTH_TIMEOUT_S" | "COORDINATION_TIMEOUT_S">,
    private readonly rollouts: Pick<RolloutRepository, "acquire" | "finish">,
    private readonly instances: Pick<InstanceRepository, "list">,
    private readonly target: TargetSource,
    private readonly logger: Logger,
    private readonly options: RolloutOptions = {},
  ) {
    this.pollMs = options.pollMs ?? ROLLOUT_POLL_MS;
  }

  /**
   * Waits for this instance's turn to switch to `release`; gives up when a newer release becomes
   * current meanwhile. `healthTimeoutS` is the app's own health check timeout, when it has one;
   * `releaseS` how long a release command may run during the turn.
   */
  async waitForTurn(release: TargetRelease, healthTimeoutS = this.config.HEALTH_TIMEOUT_S, releaseS = 0): Promise<TurnOutcome> {
    // A turn outlives a health check that runs to its timeout, so a crashed holder's lease ends by itself.
    const leaseMs = (healthTimeoutS + releaseS) * 1000 + 60_000;
    const outage = new CoordinationOutage("rollout coordination", this.config.COORDINATION_TIMEOUT_S, this.logger);
    for (;;) {
      if (this.options.signal?.aborted) return "superseded";
      const current = await this.target.current().catch(() => release);
      if (current && current.version !== release.version) return "superseded";
      try {
        const turn = await this.rollouts.acquire(this.config.APP, release.version, this.config.INSTANCE_ID, this.config.MAX_UNAVAILABLE, leaseMs);
        outage.answered();
        if (turn !== "wait") return turn;
      } catch (error) {
        // Switching without a turn would skip the canary: every instance at once. Wait, bounded.
        outage.failed(error);
      }
      await (this.options.turnFreed ? this.options.turnFreed.wait(this.pollMs) : sleep(this.pollMs, this.options.signal));
    }
  }

  /** Gives the turn back; the rollout is complete once every live instance runs `release`. */
  async finish(release: TargetRelease, ok: boolean): Promise<void> {
    try {
      let everyInstanceDone = false;
      if (ok) {
        const fresh = (await this.instances.list(this.config.APP)).filter((i) => Date.now() - Date.parse(i.lastHeartbeatAt) < STALE_INSTANCE_MS);
        everyInstanceDone = fresh.every((i) => i.release === release.version && i.state === "running");
      }
      await this.rollouts.finish(this.config.APP, release.version, this.config.INSTANCE_ID, ok ? "ok" : "failed", everyInstanceDone);
    } catch (error) {
      this.logger.warn({ err: error }, "could not record the rollout outcome");
    }
  }

  /** Gives the turn back with no verdict on the release: this instance is going away. */
  async abandon(release: TargetRelease): Promise<void> {
    await this.rollouts.finish(this.config.APP, release.version, this.config.INSTANCE_ID, "abandoned", false).catch((error) => this.logger.warn({ err: error }, "could not give the rollout turn back"));
  }
}
