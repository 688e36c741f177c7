import { execFileSync } from "node:child_process";
import { link, mkdir, mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildWheel } from "../../test/harness/wheels";
import { builtVenvPath, relocateVenv } from "../src/venv-relocate";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-venv-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A real venv at `at`, with a pip-installed console script. */
async function makeVenv(at: string) {
  const wheels = path.join(work, "wheels");
  await mkdir(wheels, { recursive: true });
  buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "hello from the console script" });
  execFileSync("python3", ["-m", "venv", at]);
  execFileSync(path.join(at, "bin", "python"), ["-m", "pip", "install", "--no-index", "--find-links", wheels, "hello-tool==1.0"], {
    env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" },
  });
}

describe("relocateVenv", () => {
  it("makes console scripts and activate work after the venv moved", async () => {
    const built = path.join(work, "build", "b-1", "antenv");
    await makeVenv(built);
    expect(await builtVenvPath(built)).toBe(built);

    const moved = path.join(work, "runtime", "releases", "b-1", "antenv");
    await mkdir(path.dirname(moved), { recursive: true });
    await rename(built, moved);
    // Before relocation, the script's shebang names a path that no longer exists.
    expect(() => execFileSync(path.join(moved, "bin", "hello-tool"), { stdio: "pipe" })).toThrow();

    const rewritten = await relocateVenv(moved, built, moved);
    expect(rewritten).toBeGreaterThanOrEqual(3); // hello-tool, pip scripts, activate*, pyvenv.cfg
    expect(execFileSync(path.join(moved, "bin", "hello-tool"), { encoding: "utf8" }).trim()).toBe("hello from the console script");

    const activate = await readFile(path.join(moved, "bin", "activate"), "utf8");
    expect(activate).toContain(moved);
    expect(activate).not.toContain(built);
    const viaActivate = execFileSync("bash", ["-c", `. '${moved}/bin/activate' && echo "$VIRTUAL_ENV" && command -v hello-tool && hello-tool`], { encoding: "utf8" });
    expect(viaActivate.trim().split("\n")).toEqual([moved, path.join(moved, "bin", "hello-tool"), "hello from the console script"]);
    // pip itself still works at the new place.
    execFileSync(path.join(moved, "bin", "pip"), ["--version"], { stdio: "pipe" });
  });

  it("replaces each file it rewrites, so a hard link to it elsewhere (another instance's copy) keeps the old contents", async () => {
    const built = path.join(work, "shared", "antenv");
    await makeVenv(built);
    const twin = path.join(work, "shared", "activate-twin");
    await link(path.join(built, "bin", "activate"), twin);
    const before = await stat(twin);
    const moved = path.join(work, "shared-moved", "antenv");
    await relocateVenv(built, built, moved);
    expect(await readFile(path.join(built, "bin", "activate"), "utf8")).toContain(moved);
    expect(await readFile(twin, "utf8")).not.toContain(moved);
    expect((await stat(twin)).mtimeMs).toBe(before.mtimeMs);
    const replaced = await stat(path.join(built, "bin", "activate"));
    expect(replaced.ino).not.toBe(before.ino);
    expect(replaced.mode).toBe(before.mode);
  });

  it("writes a /bin/sh trampoline when the new path is too long for a shebang line", async () => {
    const built = path.join(work, "short", "antenv");
    await makeVenv(built);
    const longDir = path.join(work, "x".repeat(60), "y".repeat(60), "antenv");
    await mkdir(path.dirname(longDir), { recursive: true });
    await rename(built, longDir);
    await relocateVenv(longDir, built, longDir);
    const script = await readFile(path.join(longDir, "bin", "hello-tool"), "utf8");
    expect(script.startsWith("#!/bin/sh\n")).toBe(true);
    expect(execFileSync(path.join(longDir, "bin", "hello-tool"), { encoding: "utf8" }).trim()).toBe("hello from the console script");
  });
});
