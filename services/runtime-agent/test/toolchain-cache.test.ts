import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "@slipway/shared";
import { hostToolchains } from "@slipway/shared/sandbox";
import { knownToolchains } from "../src/toolchain-cache";

const logger = createLogger("toolchain-cache-test", "silent");
let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "slipway-toolchains-"));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const saved = (toolchains: string[], overrides: Record<string, string> = {}) =>
  writeFile(path.join(root, "toolchains.json"), JSON.stringify({ path: process.env.PATH ?? "", execPath: process.execPath, toolchains, ...overrides }));

describe("the agent's toolchain cache", () => {
  it("probes the host on a first start and keeps what it found for the next", async () => {
    const found = await knownToolchains(root, logger, () => undefined);
    expect(found).toEqual(await hostToolchains());
    expect(JSON.parse(await readFile(path.join(root, "toolchains.json"), "utf8")).toolchains).toEqual(found);
  });

  it("answers with what the last start found while PATH is the same and every toolchain is still there", async () => {
    // A directory the probe would never find: only the cache can answer it.
    const remembered = await mkdtemp(path.join(os.tmpdir(), "slipway-toolchain-"));
    try {
      await saved([remembered]);
      expect(await knownToolchains(root, logger, () => undefined)).toEqual([remembered]);
    } finally {
      await rm(remembered, { recursive: true, force: true });
    }
  });

  it("probes again when a remembered toolchain is gone, or PATH changed", async () => {
    await saved([path.join(root, "removed-python")]);
    expect(await knownToolchains(root, logger, () => undefined)).toEqual(await hostToolchains());
    await saved([root], { path: "/somewhere/else/bin" });
    expect(await knownToolchains(root, logger, () => undefined)).toEqual(await hostToolchains());
  });
});
