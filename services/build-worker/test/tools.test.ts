import { lstatSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadWorkerConfig, type WorkerConfig } from "@slipway/shared";
import { writeSandboxResolvConf } from "@slipway/shared/sandbox";
import { serviceEnv } from "../../../test/harness/env";
import { prepareBuildSandbox, runCommand } from "../src/sandbox";
import { ToolCache, type ToolSpec } from "../src/tools";

let work: string;
let config: WorkerConfig;
let resolvConf: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-tools-"));
  config = loadWorkerConfig({ ...serviceEnv(), TOOLS_DIR: path.join(work, "tools"), SCRATCH_DIR: path.join(work, "scratch") });
  resolvConf = await writeSandboxResolvConf(os.tmpdir());
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const signal = new AbortController().signal;

/** A tool whose installation runs `script(dir, attempt)` with sh; `installs()` counts the attempts. */
function shellTool(name: string, version: string, script: (dir: string, attempt: number) => string) {
  let installs = 0;
  const tool: ToolSpec = {
    name,
    version,
    install: async (dir, run) => {
      installs += 1;
      await run("sh", ["-c", script(dir, installs)]);
    },
  };
  return { tool, installs: () => installs };
}

describe("the worker's tool cache", () => {
  it("installs a tool once, sandboxed, then hands it to root read-only; builds read it but cannot change it", async () => {
    const { tool, installs } = shellTool("greeter", "1.0", (dir) => `id -u > '${dir}/installed-by'; printf '#!/bin/sh\\necho hello from greeter\\n' > '${dir}/greeter'; chmod 0777 '${dir}/greeter'`);
    const tools = new ToolCache(config, resolvConf);
    const lines: string[] = [];
    const [dir, again] = await Promise.all([tools.ensure(tool, (l) => lines.push(l), signal), tools.ensure(tool, () => undefined, signal)]);
    expect(again).toBe(dir);
    expect(await tools.ensure(tool, () => undefined, signal)).toBe(dir);
    expect(installs()).toBe(1);
    expect(lines).toContain("Installing greeter 1.0 into the worker's tool cache ...");
    // Installed by an unprivileged sandbox uid, then the worker's own: root's, and not writable by others.
    expect(Number((await readFile(path.join(dir, "installed-by"), "utf8")).trim())).not.toBe(0);
    const tool0 = lstatSync(path.join(dir, "greeter"));
    expect(tool0.uid).toBe(0);
    expect(tool0.mode & 0o022).toBe(0);
    expect((await stat(dir)).uid).toBe(0);

    const sourceDir = path.join(work, "scratch", "b-tools");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(sourceDir, { recursive: true });
    const sandbox = await prepareBuildSandbox(config, "b-tools", sourceDir, resolvConf);
    await sandbox.own(sourceDir);
    sandbox.allowReading(dir);
    const output: string[] = [];
    await runCommand("sh", ["-c", `'${dir}/greeter'; echo tampered >> '${dir}/greeter' || echo refused`], sandbox, {
      cwd: sourceDir,
      env: { PATH: sandbox.path, HOME: sandbox.home },
      label: "use the tool",
      onLine: (line) => output.push(line),
      signal,
    });
    expect(output).toContain("hello from greeter");
    expect(output).toContain("refused");
    expect(await readFile(path.join(dir, "greeter"), "utf8")).not.toContain("tampered");
  });

  it("a failed installation leaves nothing behind, and the next ensure tries again", async () => {
    const { tool: flaky, installs: attempts } = shellTool("flaky", "1", (_dir, attempt) => (attempt === 1 ? "exit 3" : "true"));
    const tools = new ToolCache(config, resolvConf);
    await expect(tools.ensure(flaky, () => undefined, signal)).rejects.toThrow(/installing flaky failed \(exit code 3\)/);
    const { readdir } = await import("node:fs/promises");
    expect((await readdir(config.TOOLS_DIR)).filter((name) => name.includes("flaky"))).toEqual([]);
    await tools.ensure(flaky, () => undefined, signal);
    expect(attempts()).toBe(2);
  });
});

describe("a sandbox that bwrap could not set up", () => {
  it("is set up again, up to three times, with a line in the log; a command that fails by itself is not re-run", async () => {
    const sourceDir = path.join(work, "scratch", "b-setup-retry");
    await mkdir(sourceDir, { recursive: true });
    const sandbox = await prepareBuildSandbox(config, "b-setup-retry", sourceDir, resolvConf);
    await sandbox.own(sourceDir);
    const env = { PATH: sandbox.path, HOME: sandbox.home };
    // What bwrap prints when the kernel refuses it, from a command that fails so only on its first run.
    const flaky = `if [ ! -e tried ]; then touch tried; echo 'bwrap: loopback: Failed RTM_NEWADDR: No child processes' >&2; exit 1; fi; echo started`;
    const lines: string[] = [];
    await runCommand("sh", ["-c", flaky], sandbox, { cwd: sourceDir, env, onLine: (line) => lines.push(line), signal, label: "flaky" });
    expect(lines).toEqual([
      "bwrap: loopback: Failed RTM_NEWADDR: No child processes",
      "(the sandbox could not be set up: bwrap: loopback: Failed RTM_NEWADDR: No child processes; trying again)",
      "started",
    ]);

    const always = `echo 'bwrap: loopback: Failed RTM_NEWADDR: No child processes' >&2; echo x >> attempts; exit 1`;
    await expect(runCommand("sh", ["-c", always], sandbox, { cwd: sourceDir, env, onLine: () => undefined, signal, label: "hopeless" })).rejects.toThrow(
      "hopeless failed: the sandbox could not be set up (bwrap: loopback: Failed RTM_NEWADDR: No child processes)",
    );
    expect((await readFile(path.join(sourceDir, "attempts"), "utf8")).trim().split("\n")).toHaveLength(3);

    // Anything else the command prints makes it the command's own failure: run once.
    const own = `echo 'bwrap: looks like ours'; echo 'but it is the app talking'; echo y >> own; exit 1`;
    await expect(runCommand("sh", ["-c", own], sandbox, { cwd: sourceDir, env, onLine: () => undefined, signal, label: "own" })).rejects.toThrow("own failed (exit code 1)");
    expect((await readFile(path.join(sourceDir, "own"), "utf8")).trim().split("\n")).toHaveLength(1);
  });
});
