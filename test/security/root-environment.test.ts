import { readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxUid, spawnSandboxed, type SandboxSpec } from "@slipway/shared/sandbox";

/**
 * An app's config is the environment of its commands, and root sets each sandbox up: bwrap,
 * prlimit, setpriv and, for an overlay, mount and umount. Variables the C library, libmount or a
 * shell act on must not reach those root processes, and the app's secrets must not stand in a
 * command line any host user can read.
 */
const secret = `app-secret-${Math.random().toString(36).slice(2)}`;
const hostile = {
  GLIBC_TUNABLES: "glibc.malloc.check=3",
  LIBMOUNT_DEBUG: "all",
  BASH_ENV: "/nonexistent/bash_env",
  NODE_OPTIONS: "--no-warnings",
  PYTHONSTARTUP: "/nonexistent/startup.py",
  DATABASE_URL: `postgres://app:${secret}@db/app`,
};

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-root-env-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const limits = { memoryBytes: 256 * 1024 ** 2, maxProcesses: 64, maxFileBytes: 64 * 1024 ** 2 };
const uid = sandboxUid("app", "root-environment/i-1", 200_000);
const environ = (pid: number, file: "environ" | "cmdline") => readFileSync(`/proc/${pid}/${file}`, "utf8").split("\0").filter(Boolean);

describe("what runs as root to set a sandbox up", () => {
  it("starts without the app's environment, and the app's secrets are in no root process's command line; the command still gets all of it", async () => {
    const run = { command: "/bin/sh", args: ["-c", "env; echo ready; exec sleep 60"], cwd: "/", env: { PATH: "/usr/bin:/bin", ...hostile } };
    const spec: SandboxSpec = { name: "root-env", uid, writable: [], readOnly: [], network: "host", limits };
    const sandbox = spawnSandboxed(run, spec, "on");
    const seen: string[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: sandbox.stdout });
        lines.on("line", (line) => (line === "ready" ? resolve() : seen.push(line)));
        void sandbox.exited.then(() => reject(new Error(`the sandbox ended before it was ready: ${seen.join("\n")}`)));
      });
      // bwrap, root, for as long as the sandbox lives.
      const bwrapEnviron = environ(sandbox.pid!, "environ");
      for (const name of Object.keys(hostile)) expect(bwrapEnviron.map((entry) => entry.split("=")[0])).not.toContain(name);
      expect(environ(sandbox.pid!, "cmdline").join(" ")).not.toContain(secret);
      for (const [name, value] of Object.entries(hostile)) expect(seen).toContain(`${name}=${value}`);
    } finally {
      sandbox.kill();
      await sandbox.exited;
    }
  });

  it("an overlay's mount and umount, run as root, do not act on LIBMOUNT_DEBUG or the rest", async () => {
    const dir = path.join(work, "overlay");
    const [lower, upper] = [path.join(dir, "lower"), path.join(dir, "upper")];
    await mkdir(lower, { recursive: true });
    await mkdir(upper);
    await chmod(upper, 0o1777);
    const run = { command: "/bin/sh", args: ["-c", "echo mounted"], cwd: upper, env: { PATH: "/usr/bin:/bin", ...hostile } };
    const spec: SandboxSpec = { name: "root-env-overlay", uid, writable: [], readOnly: [], network: "host", limits, overlay: { lower, upper, scratch: path.join(dir, "scratch") } };
    const sandbox = spawnSandboxed(run, spec, "on");
    let output = "";
    sandbox.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    sandbox.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exit = await sandbox.exited;
    expect(exit.code, output).toBe(0);
    expect(output).toContain("mounted");
    // libmount's debug output, had LIBMOUNT_DEBUG reached the root-run mount.
    expect(output).not.toMatch(/libmount|loopdev|DEBUG/i);
  });
});
