import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { uniqueApp } from "./harness/env";
import { eventually, startLocalStack, type LocalStack } from "./harness/local-stack";

let stack: LocalStack;
beforeAll(async () => {
  stack = await startLocalStack(uniqueApp("restart"), { instances: 1 });
});
afterAll(async () => {
  if (stack.child.exitCode === null) await stack.stop();
});

const ENTRIES = { api: "services/api/dist/main.js", worker: "services/build-worker/dist/main.js", agent: "services/runtime-agent/dist/main.js" };

/** The pid of each service the stack runs (its direct children), by entry point. */
function servicePids(): Partial<Record<keyof typeof ENTRIES, number>> {
  const pids: Partial<Record<keyof typeof ENTRIES, number>> = {};
  for (const [name, entry] of Object.entries(ENTRIES) as [keyof typeof ENTRIES, string][]) {
    const found = spawnSync("pgrep", ["-P", String(stack.child.pid), "-f", entry], { encoding: "utf8" }).stdout.trim().split("\n").filter(Boolean);
    if (found.length === 1) pids[name] = Number(found[0]);
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("a SIGKILLed service is restarted on the same port while the others keep running; Ctrl-C still stops everything", async () => {
  const before = await eventually(async () => {
    const pids = servicePids();
    return pids.api && pids.worker && pids.agent ? (pids as Required<typeof pids>) : undefined;
  }, 30_000, "the three services");

  process.kill(before.api, "SIGKILL");
  const after = await eventually(async () => {
    const pids = servicePids();
    if (!pids.api || pids.api === before.api) return undefined;
    return (await fetch(`${stack.apiUrl}/healthz`).then((r) => r.ok, () => false)) ? pids : undefined;
  }, 60_000, `the API to answer again on its port\n${stack.output().slice(-2000)}`);

  expect(after.worker).toBe(before.worker);
  expect(after.agent).toBe(before.agent);
  expect(stack.child.exitCode).toBeNull();
  expect(stack.output()).toMatch(/slipway: api exited \(SIGKILL\); restarting it in 1 s/);

  expect(await stack.stop()).toBe(0);
  for (const pid of [after.api!, after.worker!, after.agent!]) expect(alive(pid)).toBe(false);
}, 120_000);
