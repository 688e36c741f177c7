import { describe, expect, it, vi } from "vitest";
import { createLogger } from "@slipway/shared";
import { Reconciler, type MoveOutcome, type ReleaseRunner } from "../src/reconciler";
import type { TargetRelease, TargetSource } from "../src/target";

const v = (version: number, buildId = `b${version}`): TargetRelease => ({ version, buildId });

class FakeTarget implements TargetSource {
  constructor(public release: TargetRelease | undefined) {}
  async current() {
    return this.release;
  }
}

/** Serves whatever it moved to, unless `outcomeFor` says otherwise; a `gate` holds a move in progress. */
class FakeRunner implements ReleaseRunner {
  moves: TargetRelease[] = [];
  relabels: TargetRelease[] = [];
  current: TargetRelease | undefined;
  gate: Promise<void> | undefined;
  /** Whether the app's settings differ from the serving process's. */
  changedConfig = false;
  outcomeFor: (target: TargetRelease) => MoveOutcome = () => "serving";

  serving() {
    return this.current;
  }
  async relabel(target: TargetRelease) {
    this.relabels.push(target);
    this.current = target;
  }
  async configChanged() {
    return this.changedConfig;
  }
  async moveTo(target: TargetRelease) {
    this.moves.push(target);
    await this.gate;
    const outcome = this.outcomeFor(target);
    if (outcome === "serving") this.current = target;
    return outcome;
  }
}

function setUp() {
  const target = new FakeTarget(v(1));
  const runner = new FakeRunner();
  let now = 1_000_000;
  const clock = { advance: (ms: number) => (now += ms) };
  const reconciler = new Reconciler(target, runner, createLogger("reconciler-test", "silent"), { failedRetryMs: 60_000, now: () => now });
  return { target, runner, clock, reconciler };
}

describe("the reconciler", () => {
  it("moves to the target, stays while it serves it, and moves again when the target changes", async () => {
    const { target, runner, reconciler } = setUp();
    await reconciler.reconcile();
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1)]);
    target.release = v(2);
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1), v(2)]);
  });

  it("does nothing while the app has no release", async () => {
    const { target, runner, reconciler } = setUp();
    target.release = undefined;
    await reconciler.reconcile();
    expect(runner.moves).toEqual([]);
  });

  it("relabels the serving build when it becomes current under another version, without moving", async () => {
    const { target, runner, reconciler } = setUp();
    await reconciler.reconcile();
    target.release = v(3, "b1");
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1)]);
    expect(runner.relabels).toEqual([v(3, "b1")]);
  });

  it("moves (a new process) when the serving build becomes current under another version with other settings: a config release", async () => {
    const { target, runner, reconciler } = setUp();
    await reconciler.reconcile();
    runner.changedConfig = true;
    target.release = v(2, "b1");
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1), v(2, "b1")]);
    expect(runner.relabels).toEqual([]);
    // Serving it now, the same version is left alone whatever the settings say.
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1), v(2, "b1")]);
  });

  it("backs off a broken release until the retry time passes", async () => {
    const { runner, clock, reconciler } = setUp();
    runner.outcomeFor = () => "broken";
    await reconciler.reconcile();
    clock.advance(59_000);
    await reconciler.reconcile();
    expect(runner.moves).toHaveLength(1);
    clock.advance(1_000);
    await reconciler.reconcile();
    expect(runner.moves).toHaveLength(2);
  });

  it("backs off a halted rollout but retries an outage at the next pass", async () => {
    const { target, runner, reconciler } = setUp();
    runner.outcomeFor = () => "halted";
    await reconciler.reconcile();
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1)]);
    target.release = v(2);
    runner.outcomeFor = () => "unavailable";
    await reconciler.reconcile();
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1), v(2), v(2)]);
  });

  it("tries a move that met an outage again soon, without waiting for the next pass, until it serves", async () => {
    const target = new FakeTarget(v(1));
    const runner = new FakeRunner();
    let outages = 3;
    runner.outcomeFor = () => (outages-- > 0 ? "unavailable" : "serving");
    const reconciler = new Reconciler(target, runner, createLogger("reconciler-test", "silent"), { outageRetryFirstMs: 10 });
    // An hour between passes: only the outage retries can bring it to the release.
    await reconciler.start(3_600_000);
    await vi.waitFor(() => expect(runner.current).toEqual(v(1)), { timeout: 5000 });
    expect(runner.moves).toEqual([v(1), v(1), v(1), v(1)]);
    await reconciler.stop();
  });

  it("gives a backed-off release another try at once on a release notification", async () => {
    const { runner, reconciler } = setUp();
    runner.outcomeFor = () => "broken";
    await reconciler.reconcile();
    runner.outcomeFor = () => "serving";
    reconciler.notified(1);
    await vi.waitFor(() => expect(runner.current).toEqual(v(1)));
    expect(runner.moves).toEqual([v(1), v(1)]);
  });

  it("coalesces the calls made during a pass into one more pass, which sees the newest target", async () => {
    const { target, runner, reconciler } = setUp();
    let open!: () => void;
    runner.gate = new Promise((resolve) => (open = resolve));
    const first = reconciler.reconcile();
    await vi.waitFor(() => expect(runner.moves).toHaveLength(1));
    target.release = v(2);
    reconciler.notified(2);
    const again = [reconciler.reconcile(), reconciler.reconcile()];
    target.release = v(3);
    expect(again.every((p) => p === first)).toBe(true);
    open();
    await first;
    expect(runner.moves).toEqual([v(1), v(3)]);
    expect(runner.current).toEqual(v(3));
  });

  it("once stopped, waits for the pass in progress and starts no other", async () => {
    const { target, runner, reconciler } = setUp();
    let open!: () => void;
    runner.gate = new Promise((resolve) => (open = resolve));
    void reconciler.reconcile();
    await vi.waitFor(() => expect(runner.moves).toHaveLength(1));
    target.release = v(2);
    void reconciler.reconcile();
    let stopped = false;
    const stopping = reconciler.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    open();
    await stopping;
    await reconciler.reconcile();
    expect(runner.moves).toEqual([v(1)]);
  });
});
