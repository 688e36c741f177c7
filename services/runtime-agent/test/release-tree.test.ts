import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sealTree } from "@slipway/shared";
import { treeFingerprint } from "../src/release-tree";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-release-tree-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** A tree with the modes a build can leave: private files, scripts, a set-uid file, a closed directory, a link. */
async function buildTree(dir: string): Promise<void> {
  await mkdir(path.join(dir, "bin"), { recursive: true });
  await mkdir(path.join(dir, "private"), { mode: 0o700 });
  const files: [string, number][] = [["app.py", 0o644], ["secret.txt", 0o600], ["bin/run", 0o755], ["bin/setuid", 0o4755], ["private/notes", 0o640], ["bin/owner-only", 0o700]];
  for (const [name, mode] of files) {
    await writeFile(path.join(dir, name), name);
    await chmod(path.join(dir, name), mode);
  }
  await chmod(path.join(dir, "private"), 0o700);
  await symlink("../app.py", path.join(dir, "bin", "link"));
}

describe("release trees", () => {
  it("a fingerprint taken as sealed, before or while sealing, equals the sealed tree's", async () => {
    const dir = path.join(work, "tree");
    await buildTree(dir);
    const unsealed = await treeFingerprint(dir);
    const asSealed = await treeFingerprint(dir, { asSealed: true });
    expect(asSealed).not.toBe(unsealed);
    const [, duringSeal] = await Promise.all([sealTree(dir), treeFingerprint(dir, { asSealed: true })]);
    expect(await treeFingerprint(dir)).toBe(asSealed);
    expect(duringSeal).toBe(asSealed);
    // Once sealed, sealing again changes nothing.
    expect(await treeFingerprint(dir, { asSealed: true })).toBe(asSealed);
  });
});
