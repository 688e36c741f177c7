import { CoalescedPass, type Logger } from "@slipway/shared";
import type { TargetRelease, TargetSource } from "./target";

/** How long a failed release is left alone before a reconcile tries it again. */
const FAILED_RETRY_MS = 60_000;
/** After an outage the move is tried again this soon, then twice as late each time, up to the timer's interval. */
const OUTAGE_RETRY_FIRST_MS = 1000;

/**
 * How a move ended: `broken` (the release cannot work as built) and `halted` (the rollout stopped
 * on it) are backed off; `unavailable` (an outage) and `superseded` are tried at the next pass.
 */
export type MoveOutcome = "serving" | "superseded" | "halted" | "broken" | "unavailable";

/** What the reconciler drives: the release this instance serves. */
export interface ReleaseRunner {
  /** The release serving now, if any. */
  serving(): TargetRelease | undefined;
  /** The serving build became current again under another version number (a rollback to it). */
  relabel(target: TargetRelease): Promise<void>;
  /** Whether the app's settings now differ from those the serving process was started with. */
  configChanged(): Promise<boolean>;
  moveTo(target: TargetRelease): Promise<MoveOutcome>;
}

export interface ReconcilerOptions {
  failedRetryMs?: number;
  outageRetryFirstMs?: number;
  now?: () => number;
}

/**
 * Keeps the instance on its target release: reconciles on start, on each release notification
 * and on a timer; concurrent calls coalesce into one more pass.
 */
export class Reconciler {
  private failed: { version: number; at: number } | undefined;
  private readonly passes = new CoalescedPass(() => this.reconcilePass(), () => this.stopping);
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = Infinity;
  /** The retry planned after an outage, and how long it waits (doubled on each outage in a row). */
  private outageRetry: NodeJS.Timeout | undefined;
  private outageRetryAfterMs = 0;
  private readonly failedRetryMs: number;
  private readonly outageRetryFirstMs: number;
  private readonly now: () => number;

  constructor(
    private readonly target: TargetSource,
    private readonly runner: ReleaseRunner,
    private readonly logger: Logger,
    options: ReconcilerOptions = {},
  ) {
    this.failedRetryMs = options.failedRetryMs ?? FAILED_RETRY_MS;
    this.outageRetryFirstMs = options.outageRetryFirstMs ?? OUTAGE_RETRY_FIRST_MS;
    this.now = options.now ?? Date.now;
  }

  /** Reconciles now and every `intervalMs` until stopped; resolves when the first pass is done. */
  start(intervalMs: number): Promise<void> {
    this.intervalMs = intervalMs;
    this.timer = setInterval(() => void this.reconcile(), intervalMs).unref();
    return this.reconcile();
  }

  /** A new release was announced: one that failed before gets another try at once. */
  notified(version: number): void {
    this.logger.info({ version }, "release notification");
    this.failed = undefined;
    void this.reconcile();
  }

  reconcile(): Promise<void> {
    return this.passes.run();
  }

  private async reconcilePass(): Promise<void> {
    try {
      await this.reconcileOnce();
    } catch (error) {
      this.logger.error({ err: error }, "reconcile failed");
    }
  }

  /** No more passes; resolves once the one in progress has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    clearTimeout(this.outageRetry);
    await this.passes.settled();
  }

  private async reconcileOnce(): Promise<void> {
    const target = await this.target.current();
    if (!target) return;
    const serving = this.runner.serving();
    if (serving && serving.version === target.version) return;
    // The same build under a new version is a rollback to it, or a config release: only the
    // latter needs a new process, started like any release so a broken config never serves.
    if (serving && serving.buildId === target.buildId && !(await this.runner.configChanged())) {
      await this.runner.relabel(target);
      return;
    }
    if (this.failed?.version === target.version && this.now() - this.failed.at < this.failedRetryMs) return;
    const outcome = await this.runner.moveTo(target);
    if (outcome === "serving") this.failed = undefined;
    if (outcome === "broken" || outcome === "halted") this.failed = { version: target.version, at: this.now() };
    if (outcome === "unavailable") this.retrySoon();
    else this.outageRetryAfterMs = 0;
  }

  /**
   * An outage (storage or Redis unreachable, a stalled download) may be over in a second: the
   * move is tried again soon rather than at the next timer pass, backing off while it lasts.
   */
  private retrySoon(): void {
    if (this.stopping || this.outageRetry) return;
    const afterMs = Math.min(this.outageRetryAfterMs ? this.outageRetryAfterMs * 2 : this.outageRetryFirstMs, this.intervalMs);
    this.outageRetryAfterMs = afterMs;
    this.outageRetry = setTimeout(() => {
      this.outageRetry = undefined;
      void this.reconcile();
    }, afterMs).unref();
  }
}
