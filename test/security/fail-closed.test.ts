import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectRedis, createLogger, freePort, recordKeys, ReleasePhaseRepository, RolloutRepository } from "@slipway/shared";
import { startRedisServer, type EmbeddedRedis } from "@slipway/shared/embedded";
import { ReleasePhaseError, ReleasePhaseRunner } from "../../services/runtime-agent/src/release-phase";
import { RolloutTurns } from "../../services/runtime-agent/src/rollout";
import type { LaunchSpec } from "../../services/runtime-agent/src/supervisor";
import { eventually } from "../harness/local-stack";

/**
 * A release's canary and its release command are its safety: with Redis unreachable for a few
 * seconds in the middle of a rollout, agents went on without them (every instance switched at
 * once; the release command, failed on the canary, was skipped and the release served). A Redis
 * that does not answer is not one that said yes.
 */

let work: string;
let redis: EmbeddedRedis;
let redisDir: string;
let port: number;
const clients: Redis[] = [];
const keys = recordKeys(`fail-closed-${Math.random().toString(36).slice(2, 8)}`);
const app = "shop";
const logger = createLogger("fail-closed", "silent");

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-fail-closed-"));
  redisDir = path.join(work, "redis");
  port = await freePort();
  redis = await startRedisServer({ dir: redisDir, port });
});

let running = true;
async function stopRedis(): Promise<void> {
  await redis.stop();
  running = false;
}
async function restartRedis(): Promise<void> {
  redis = await startRedisServer({ dir: redisDir, port, password: redis.password });
  running = true;
}

afterEach(async () => {
  // Each test may leave Redis stopped: the next one starts from a running one.
  if (!running) await restartRedis();
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A connection made as the agent makes its own (no offline queue: commands fail while Redis is down), once it is ready. */
async function agentConnection(): Promise<Redis> {
  const client = connectRedis(redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, commandTimeout: 10_000 });
  clients.push(client);
  if (client.status !== "ready") await new Promise((resolve) => client.once("ready", resolve));
  return client;
}

/** Counts the calls of `target`'s methods that failed: how a test knows an outage was seen. */
function countingFailures<T extends object>(target: T): { wrapped: T; failures: () => number; calls: () => number } {
  let failures = 0;
  let calls = 0;
  const wrapped = new Proxy(target, {
    get(object, name, receiver) {
      const value = Reflect.get(object, name, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) =>
        (calls += 1) &&
        (value as (...a: unknown[]) => Promise<unknown>).apply(object, args).catch((error: unknown) => {
          failures += 1;
          throw error;
        });
    },
  });
  return { wrapped, failures: () => failures, calls: () => calls };
}

const settledState = <T>(promise: Promise<T>) => {
  const state = { settled: false };
  promise.then(() => (state.settled = true), () => (state.settled = true));
  return state;
};

describe("with Redis not answering mid-rollout", () => {
  it("no instance switches without its turn: the canary still goes alone once Redis is back", async () => {
    const version = 7;
    const turns = await Promise.all(["a", "b"].map(async (id) => {
      const { wrapped, failures, calls } = countingFailures(new RolloutRepository(await agentConnection(), keys));
      const config = { APP: app, INSTANCE_ID: id, MAX_UNAVAILABLE: 2, HEALTH_TIMEOUT_S: 10, COORDINATION_TIMEOUT_S: 120 };
      const rollout = new RolloutTurns(config, wrapped, { list: async () => [] }, { current: async () => ({ version, buildId: "b7" }) }, logger, { pollMs: 100 });
      return { rollout, failures, calls };
    }));
    await stopRedis();
    const waits = turns.map(({ rollout }) => rollout.waitForTurn({ version, buildId: "b7" }));
    const states = waits.map(settledState);
    await eventually(async () => (turns.every(({ failures }) => failures() >= 3) ? true : undefined), 30_000, "both instances to meet the outage");
    expect(states.map((s) => s.settled)).toEqual([false, false]);

    await restartRedis();
    const first = await Promise.race(waits.map((wait, index) => wait.then((turn) => ({ turn, index }))));
    expect(first.turn).toBe("go");
    // The other waits while the canary holds the only turn there is before a success.
    const other = 1 - first.index;
    const asked = turns[other]!.calls();
    await eventually(async () => (turns[other]!.calls() >= asked + 3 ? true : undefined), 30_000, "the other instance to ask again");
    expect(states[other]!.settled).toBe(false);
    await turns[first.index]!.rollout.finish({ version, buildId: "b7" }, true);
    expect(await waits[other]).toBe("go");
  });

  it("the release command is never skipped: an instance that cannot learn its outcome waits, then follows the canary's failure", async () => {
    const version = 3;
    const setup = await agentConnection();
    await setup.hset(keys.releases(app), String(version), JSON.stringify({ version, buildId: "b3", state: "rolling" }));
    // The canary ran the release command, which failed.
    await new ReleasePhaseRepository(setup, keys).record(app, version, {
      state: "failed",
      command: "python manage.py migrate",
      exitCode: 1,
      instanceId: "a",
      finishedAt: new Date().toISOString(),
      outputTail: "django.db.utils.OperationalError",
    });

    const { wrapped, failures } = countingFailures(new ReleasePhaseRepository(await agentConnection(), keys));
    const config = { APP: app, INSTANCE_ID: "b", RELEASE_COMMAND_TIMEOUT_S: 60, COORDINATION_TIMEOUT_S: 120 };
    const noCommandRuns = () => {
      throw new Error("instance b must not run the release command: the canary ran it");
    };
    const runner = new ReleasePhaseRunner(config, { phases: wrapped, sandbox: noCommandRuns, appNotes: { track: async () => undefined }, appLog: {} as never }, logger, 100);
    await stopRedis();
    const ensured = runner.ensure({ version, buildId: "b3" }, {} as LaunchSpec, "python manage.py migrate");
    const state = settledState(ensured);
    await eventually(async () => (failures() >= 3 ? true : undefined), 30_000, "the outage to be met");
    expect(state.settled).toBe(false);

    await restartRedis();
    await expect(ensured).rejects.toThrow(ReleasePhaseError);
    await expect(ensured).rejects.toThrow(/the release command failed \(exit code 1\) on a/);
  });

  it("an outage longer than COORDINATION_TIMEOUT_S fails the move instead of going on without Redis", async () => {
    const config = { APP: app, INSTANCE_ID: "c", RELEASE_COMMAND_TIMEOUT_S: 60, COORDINATION_TIMEOUT_S: 1 };
    const runner = new ReleasePhaseRunner(config, { phases: new ReleasePhaseRepository(await agentConnection(), keys), sandbox: () => ({}) as never, appNotes: { track: async () => undefined }, appLog: {} as never }, logger, 100);
    await stopRedis();
    await expect(runner.ensure({ version: 4, buildId: "b4" }, {} as LaunchSpec, "migrate")).rejects.toThrow(/release phase coordination unavailable for 1 s/);
  });
});
