import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxUid } from "@slipway/shared/sandbox";
import { claimAppUid } from "../src/app-uid";
import { collidingInstanceIds } from "../../../test/harness/uids";

const BASE = 200_000;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slipway-app-uid-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Two instance names whose derived uids are the same. */
function collidingIds(app: string): [string, string] {
  return collidingInstanceIds(app, "i-", BASE).map((id) => `${app}/${id}`) as [string, string];
}

async function runtimeRoot(name: string): Promise<string> {
  const root = path.join(dir, "roots", name);
  await mkdir(root, { recursive: true });
  return root;
}

describe("an app instance's sandbox uid", () => {
  it("is unique on the host even when two instances' names derive the same one, and stays each instance's across restarts", async () => {
    const claims = path.join(dir, "claims-unique");
    const [first, second] = collidingIds("shop");
    const [rootA, rootB] = [await runtimeRoot("a"), await runtimeRoot("b")];
    const uidA = await claimAppUid(claims, first, rootA, BASE);
    const uidB = await claimAppUid(claims, second, rootB, BASE);
    expect(uidA).toBe(sandboxUid("app", first, BASE));
    expect(uidB).not.toBe(uidA);
    expect(uidB).toBe(sandboxUid("app", second, BASE, 1));
    // Restarted agents get the same uids back (their data directories are owned by them).
    expect(await claimAppUid(claims, second, rootB, BASE)).toBe(uidB);
    expect(await claimAppUid(claims, first, rootA, BASE)).toBe(uidA);
  });

  it("never hands one uid to two instances claiming at the same moment", async () => {
    const claims = path.join(dir, "claims-race");
    const [first, second] = collidingIds("race");
    const [rootA, rootB] = [await runtimeRoot("race-a"), await runtimeRoot("race-b")];
    const uids = await Promise.all([claimAppUid(claims, first, rootA, BASE), claimAppUid(claims, second, rootB, BASE)]);
    expect(new Set(uids).size).toBe(2);
  });

  it("is taken over once the instance that held it is gone (its runtime root removed)", async () => {
    const claims = path.join(dir, "claims-stale");
    const [first, second] = collidingIds("gone");
    const rootA = await runtimeRoot("gone-a");
    const uidA = await claimAppUid(claims, first, rootA, BASE);
    await rm(rootA, { recursive: true });
    expect(await claimAppUid(claims, second, await runtimeRoot("gone-b"), BASE)).toBe(uidA);
  });
});
