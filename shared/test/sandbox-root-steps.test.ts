import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSandboxed, type SandboxSpec } from "../src/sandbox/index";
import { readAll } from "../src/sandbox/process-io";

/**
 * bwrap, and the steps inside the sandbox that run as root before `setpriv` (prlimit, setpriv,
 * the overlay mount), start from the command's environment: an app's, whose PATH begins with its
 * own venv and whose settings may name a preload library. None of that may run as root.
 */

const UID = 47_123;
let work: string;
let out: string;
let fakes: string;
let preload: string;

/** A preload library that notes the uid of every process it is loaded into. */
const PRELOAD_SOURCE = `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void note(void) {
  const char *out = getenv("NOTES");
  if (!out) return;
  char file[4096];
  snprintf(file, sizeof file, "%s/preloaded-as-%d", out, (int)getuid());
  FILE *f = fopen(file, "a");
  if (f) { fputs("loaded\\n", f); fclose(f); }
}
`;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-root-steps-"));
  out = path.join(work, "notes");
  fakes = path.join(work, "fakes");
  await mkdir(out);
  await chmod(out, 0o777);
  await mkdir(fakes);
  // Every tool a root step runs, and the shell, as the app could ship them in its venv's bin.
  for (const tool of ["bwrap", "prlimit", "setpriv", "bash", "env", "sh", "mount", "umount"]) {
    await writeFile(path.join(fakes, tool), `#!/bin/sh\necho "$0 ran as $(id -u)" >> "$NOTES/pwned"\nexit 1\n`, { mode: 0o755 });
  }
  await writeFile(path.join(work, "preload.c"), PRELOAD_SOURCE);
  preload = path.join(work, "preload.so");
  execFileSync("gcc", ["-shared", "-fPIC", "-o", preload, path.join(work, "preload.c")]);
  await chmod(work, 0o755);
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function runIn(spec: Partial<SandboxSpec>, cwd: string, pathFirst: string[]) {
  const env = { PATH: [...pathFirst, "/usr/bin", "/bin"].join(":"), LD_PRELOAD: preload, NOTES: out };
  const limits = { memoryBytes: 256 * 1024 ** 2, maxProcesses: 64, maxFileBytes: 1024 ** 3 };
  const run = { command: "/bin/sh", args: ["-c", 'echo "uid=$(id -u) preload=$LD_PRELOAD"'], cwd, env };
  const sandbox = spawnSandboxed(run, { name: "root-steps", uid: UID, writable: [out], readOnly: [work], network: "host", limits, ...spec }, "on");
  const [stdout, exit] = await Promise.all([readAll(sandbox.stdout), sandbox.exited]);
  return { stdout: stdout.trim(), exit };
}

describe("the sandbox's root-run steps", () => {
  it("run no program found first on the command's PATH and load no library its environment preloads; the command still gets both", async () => {
    const { stdout, exit } = await runIn({}, work, [fakes]);
    expect(exit.code).toBe(0);
    expect(stdout).toBe(`uid=${UID} preload=${preload}`);
    // Loaded by the command (its shell and `id`), never by bwrap, prlimit or setpriv as root.
    expect((await readdir(out)).sort()).toEqual([`preloaded-as-${UID}`]);
  });

  it("hold for the overlay's mount step too, whose PATH then reaches into the release", async () => {
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
    await chmod(out, 0o777);
    const lower = path.join(work, "lower");
    const upper = path.join(work, "upper");
    await mkdir(path.join(lower, "bin"), { recursive: true });
    await mkdir(upper);
    await chmod(upper, 0o1777);
    for (const tool of ["umount", "sh", "env"]) await writeFile(path.join(lower, "bin", tool), `#!/bin/sh\necho "$0 ran as $(id -u)" >> "$NOTES/pwned"\nexit 1\n`, { mode: 0o755 });
    const { stdout, exit } = await runIn({ overlay: { lower, upper, scratch: path.join(work, "scratch") } }, upper, [path.join(upper, "bin"), fakes]);
    expect(exit.code).toBe(0);
    expect(stdout).toBe(`uid=${UID} preload=${preload}`);
    expect((await readdir(out)).sort()).toEqual([`preloaded-as-${UID}`]);
  });
});
