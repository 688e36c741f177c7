import { describe, expect, it, vi } from "vitest";
import { createLogger, STALE_INSTANCE_MS, type InstanceReport, type RolloutTurn, type TurnOutcomeRecord } from "@slipway/shared";
import { RolloutTurns, TurnFreedSignal } from "../src/rollout";
import type { TargetRelease } from "../src/target";

const v2: TargetRelease = { version: 2, buildId: "b2" };
const config = { APP: "shop", INSTANCE_ID: "i-0", MAX_UNAVAILABLE: 1, HEALTH_TIMEOUT_S: 10, COORDINATION_TIMEOUT_S: 1 };

/** Answers `acquire` from a script of turns (the last repeats), or throws as a Redis outage would. */
class FakeRollouts {
  acquired = 0;
  finished: { version: number; outcome: TurnOutcomeRecord; everyInstanceDone: boolean }[] = [];
  outage = false;
  constructor(private readonly turns: RolloutTurn[] = ["go"]) {}
  async acquire(_app: string, _version: number, _instance: string, _max: number, _leaseMs: number): Promise<RolloutTurn> {
    if (this.outage) throw new Error("connection refused");
    return this.turns[Math.min(this.acquired++, this.turns.length - 1)]!;
  }
  async finish(_app: string, version: number, _instance: string, outcome: TurnOutcomeRecord, everyInstanceDone: boolean) {
    if (this.outage) throw new Error("connection refused");
    this.finished.push({ version, outcome, everyInstanceDone });
  }
}

const instance = (instanceId: string, release: number, state: InstanceReport["state"], ageMs = 0): InstanceReport => ({
  instanceId,
  release,
  buildId: `b${release}`,
  state,
  appPath: null,
  lastHeartbeatAt: new Date(Date.now() - ageMs).toISOString(),
});

function setUp(rollouts: FakeRollouts, instances: InstanceReport[] = [], signal?: AbortSignal) {
  const target = { release: v2 as TargetRelease | undefined, current: async () => target.release };
  const turns = new RolloutTurns(config, rollouts, { list: async () => instances }, target, createLogger("rollout-test", "silent"), { pollMs: 1, signal });
  return { target, turns };
}

describe("rollout turns", () => {
  it("waits while the rollout says wait, then takes its turn", async () => {
    const rollouts = new FakeRollouts(["wait", "wait", "wait", "go"]);
    expect(await setUp(rollouts).turns.waitForTurn(v2)).toBe("go");
    expect(rollouts.acquired).toBe(4);
  });

  it("takes a turn given back at once, without waiting for its next poll", async () => {
    const rollouts = new FakeRollouts(["wait", "go"]);
    const target = { current: async () => v2 };
    const turnFreed = new TurnFreedSignal();
    // A poll interval no test would wait out: only the signal can end the wait.
    const turns = new RolloutTurns(config, rollouts, { list: async () => [] }, target, createLogger("rollout-test", "silent"), { pollMs: 600_000, turnFreed });
    const waiting = turns.waitForTurn(v2);
    // Notified until it acquires again: a notice before its wait began would be missed, as one lost on the wire.
    await vi.waitFor(() => {
      turnFreed.notify();
      expect(rollouts.acquired).toBe(2);
    });
    expect(await waiting).toBe("go");
    expect(rollouts.acquired).toBe(2);
  });

  it("reports a halted rollout", async () => {
    expect(await setUp(new FakeRollouts(["wait", "halted"])).turns.waitForTurn(v2)).toBe("halted");
  });

  it("gives up waiting when a newer release becomes current", async () => {
    const rollouts = new FakeRollouts(["wait"]);
    const { target, turns } = setUp(rollouts);
    const waiting = turns.waitForTurn(v2);
    await vi.waitFor(() => expect(rollouts.acquired).toBeGreaterThan(2));
    target.release = { version: 3, buildId: "b3" };
    expect(await waiting).toBe("superseded");
  });

  it("gives up waiting once the agent stops", async () => {
    const rollouts = new FakeRollouts(["wait"]);
    const stopping = new AbortController();
    const waiting = setUp(rollouts, [], stopping.signal).turns.waitForTurn(v2);
    await vi.waitFor(() => expect(rollouts.acquired).toBeGreaterThan(0));
    stopping.abort();
    expect(await waiting).toBe("superseded");
  });

  it("never switches without a turn: through a Redis outage it waits, then takes its turn once Redis answers", async () => {
    const rollouts = new FakeRollouts(["go"]);
    rollouts.outage = true;
    const waiting = setUp(rollouts).turns.waitForTurn(v2);
    let settled = false;
    void waiting.then(() => (settled = true), () => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toBe(false);
    rollouts.outage = false;
    expect(await waiting).toBe("go");
  });

  it("fails the move once Redis has not answered for COORDINATION_TIMEOUT_S", async () => {
    const rollouts = new FakeRollouts();
    rollouts.outage = true;
    await expect(setUp(rollouts).turns.waitForTurn(v2)).rejects.toThrow(/rollout coordination unavailable for 1 s \(connection refused\): not going on without it/);
  });

  it("finishes the rollout once every live instance runs the release, not waiting for stale ones", async () => {
    const rollouts = new FakeRollouts();
    const instances = [instance("i-0", 2, "running"), instance("i-1", 2, "running"), instance("i-2", 1, "running", STALE_INSTANCE_MS + 5000)];
    await setUp(rollouts, instances).turns.finish(v2, true);
    expect(rollouts.finished).toEqual([{ version: 2, outcome: "ok", everyInstanceDone: true }]);
  });

  it("leaves the rollout open while a live instance is behind, and records a failure as not done", async () => {
    const rollouts = new FakeRollouts();
    const { turns } = setUp(rollouts, [instance("i-0", 2, "running"), instance("i-1", 1, "running", 1000)]);
    await turns.finish(v2, true);
    await turns.finish(v2, false);
    expect(rollouts.finished).toEqual([
      { version: 2, outcome: "ok", everyInstanceDone: false },
      { version: 2, outcome: "failed", everyInstanceDone: false },
    ]);
  });

  it("does not throw when the outcome cannot be recorded", async () => {
    const rollouts = new FakeRollouts();
    rollouts.outage = true;
    await expect(setUp(rollouts).turns.finish(v2, true)).resolves.toBeUndefined();
    await expect(setUp(rollouts).turns.abandon(v2)).resolves.toBeUndefined();
  });

  it("an instance going away gives its turn back with no verdict on the release", async () => {
    const rollouts = new FakeRollouts();
    await setUp(rollouts, [instance("i-0", 1, "running")]).turns.abandon(v2);
    expect(rollouts.finished).toEqual([{ version: 2, outcome: "abandoned", everyInstanceDone: false }]);
  });
});
