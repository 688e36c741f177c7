import { spawn } from "node:child_process";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { compiledEntry } from "../harness/entries";
import { serviceEnv } from "../harness/env";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
let work: string;
/** A PATH with everything a service needs except bubblewrap. */
let pathWithoutBwrap: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-nosandbox-"));
  pathWithoutBwrap = path.join(work, "bin");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(pathWithoutBwrap);
  for (const command of ["sh", "bash", "tar", "zstd", "python3", "setpriv", "prlimit", "slirp4netns", "nsenter", "iptables-restore", "chown"]) {
    const { execFileSync } = await import("node:child_process");
    const found = execFileSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" }).trim();
    await symlink(found, path.join(pathWithoutBwrap, command));
  }
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs a service until it exits or prints `until`; answers its exit code (null: still running) and output. */
function runService(service: "build-worker" | "runtime-agent", env: Record<string, string>, until: RegExp): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [compiledEntry(service)], {
    cwd: root,
    env: { ...serviceEnv(), QUEUE_PREFIX: `nosandbox-${Date.now()}`, SCRATCH_DIR: path.join(work, "scratch"), PATH: pathWithoutBwrap, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (until.test(output)) {
        child.kill("SIGKILL");
        resolve({ code: null, output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe("where the sandbox cannot run", () => {
  it("the worker and the agent refuse to start, in one line saying what is missing", async () => {
    const agentEnv = { APP: "demo", INSTANCE_ID: "i-1", PORT: String(await freePort()), RUNTIME_ROOT: path.join(work, "runtime") };
    for (const [service, env] of [["build-worker", {}], ["runtime-agent", agentEnv]] as const) {
      const { code, output } = await runService(service, env, /listening|ready/);
      expect(code, output).toBe(1);
      expect(output.trim().split("\n"), output).toHaveLength(1);
      expect(output).toMatch(/^sandbox unavailable: bwrap not installed .*; set SANDBOX=off/);
    }
  });

  it("with SANDBOX=off they start, and say loudly that untrusted code runs unsandboxed", async () => {
    const { output } = await runService("build-worker", { SANDBOX: "off" }, /"level":(40|50).*SANDBOX=off/);
    expect(output).toMatch(/SANDBOX=off: builds run untrusted code as this worker's own user/);
  });
});
