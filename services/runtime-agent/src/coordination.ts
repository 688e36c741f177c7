import type { Logger } from "@slipway/shared";

/**
 * Redis did not answer about a release's coordination (its rollout turn, its release command) for
 * COORDINATION_TIMEOUT_S: the move fails closed, keeping what serves, and is tried again later.
 */
export class CoordinationUnavailable extends Error {}

/**
 * Tracks how long coordination has gone unanswered: `failed` once per failed call, throwing
 * CoordinationUnavailable once the outage has lasted `timeoutS`; `answered` when a call worked.
 */
export class CoordinationOutage {
  private since: number | undefined;

  constructor(
    private readonly what: string,
    private readonly timeoutS: number,
    private readonly logger: Logger,
  ) {}

  failed(error: unknown): void {
    const now = Date.now();
    if (this.since === undefined) {
      this.since = now;
      this.logger.warn({ err: error }, `${this.what} unavailable; waiting up to ${this.timeoutS} s for Redis rather than going on without it`);
    }
    if (now - this.since >= this.timeoutS * 1000) throw new CoordinationUnavailable(`${this.what} unavailable for ${this.timeoutS} s (${(error as Error).message}): not going on without it`);
  }

  answered(): void {
    this.since = undefined;
  }
}
