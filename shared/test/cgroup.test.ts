import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { SandboxCgroup } from "../src/sandbox/cgroup";

const alive = (pid: number) => readFile(`/proc/${pid}/stat`, "utf8").then((stat) => !/^\d+ \(.*\) [ZX] /s.test(stat), () => false);

/** A process in a new group of its own, before it does anything. */
async function inGroup(group: SandboxCgroup, script: string) {
  const child = spawn("sh", ["-c", `read go; ${script}`], { stdio: ["pipe", "ignore", "ignore"] });
  await group.add(child.pid!);
  child.stdin!.end("go\n");
  return child;
}

describe("a sandbox's cgroup, destroyed", () => {
  it("kills what is left running and counts it", async () => {
    const group = await SandboxCgroup.create(`cgroup-test-left-${process.pid}`, { memoryBytes: 64 * 1024 * 1024, maxProcesses: 16 });
    const child = await inGroup(group, "exec sleep 600");
    expect(await group.destroy(100)).toBe(1);
    expect(await alive(child.pid!)).toBe(false);
  });

  it("does not count a process that ends by itself a moment later, as a sandbox's init does after its command", async () => {
    const group = await SandboxCgroup.create(`cgroup-test-ending-${process.pid}`, { memoryBytes: 64 * 1024 * 1024, maxProcesses: 16 });
    await inGroup(group, "exec sleep 0.3");
    expect(await group.destroy(10_000)).toBe(0);
    expect(await group.members()).toEqual([]);
  });
});
