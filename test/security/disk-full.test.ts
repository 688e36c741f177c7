import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uniqueApp } from "../harness/env";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";

/**
 * A build that fills the worker's scratch disk, on purpose or not, failed with a raw errno line
 * (or a bare exit code): it must say that the disk is full, and the worker must go on.
 */
let work: string;
let scratch: string;
let stack: InProcessStack | undefined;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-disk-full-"));
  scratch = path.join(work, "scratch");
  await mkdir(scratch);
  // A small disk of its own for the worker's scratch space: a tmpfs, removed after the test.
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64m", "slipway-disk-full", scratch]);
  stack = await startInProcessStack({ SCRATCH_DIR: path.join(scratch, "build") });
});

afterAll(async () => {
  await stack?.close();
  try {
    execFileSync("umount", [scratch]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

async function build(files: Record<string, string>, buildEnv: Record<string, string> = {}, big?: number) {
  const app = uniqueApp("diskfull");
  await stack!.api.apps.upsert(app, { buildEnv });
  const dir = await writeTree(path.join(work, app), files);
  if (big) await writeFile(path.join(dir, "data.bin"), randomBytes(big));
  return waitForBuild(stack!.baseUrl, (await uploadDir(stack!.baseUrl, app, dir)).id, 180_000);
}

describe("a full scratch disk", () => {
  it("fails a build whose command fills it, saying so, and the worker builds the next one", async () => {
    const full = await build({ "app.py": "" }, { PRE_BUILD_COMMAND: "head -c 128M /dev/zero > filler" });
    expect(full.status).toBe("failed");
    expect(full.error).toMatch(/^the build ran out of disk space: .*\(SCRATCH_DIR\) is full.*PRE_BUILD_COMMAND failed \(exit code 1\): No space left on device/);
    const next = await build({ "app.py": "" });
    expect(next.status, next.error).toBe("succeeded");
  });

  it("fails a build whose source does not fit with the same reason, not an errno line", async () => {
    const full = await build({ "app.py": "" }, {}, 80 * 1024 * 1024);
    expect(full.status).toBe("failed");
    expect(full.error).toMatch(/^the build ran out of disk space: .*\(SCRATCH_DIR\) is full/);
  });
});
