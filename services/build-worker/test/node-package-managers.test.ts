import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTree } from "../../../test/harness/stack";
import { choosePackageManager, managerCommands, parsePackageManagerField } from "../src/platforms/node-package-managers";

let work: string;
let count = 0;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-managers-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const choose = async (files: Record<string, string>, packageManager?: string) =>
  choosePackageManager(await writeTree(path.join(work, String(++count)), { "package.json": "{}", ...files }), packageManager);

describe("choosing the Node package manager", () => {
  it("reads packageManager: name, exact version, optional hash", () => {
    expect(parsePackageManagerField("pnpm@9.12.0")).toEqual({ name: "pnpm", version: "9.12.0" });
    expect(parsePackageManagerField("yarn@4.5.0+sha512.ABC123")).toEqual({ name: "yarn", version: "4.5.0", hash: { algorithm: "sha512", hex: "abc123" } });
    expect(parsePackageManagerField(undefined)).toBeUndefined();
    expect(() => parsePackageManagerField("pnpm@^9")).toThrow(/not an exact version/);
    expect(() => parsePackageManagerField("pnpm")).toThrow(/not <name>@<version>/);
  });

  it("follows the lock file: none or package-lock.json npm, yarn.lock Yarn 1, pnpm-lock.yaml pnpm by its format", async () => {
    const none = await choose({});
    expect(none).toMatchObject({ name: "npm", reason: "no lock file" });
    expect(none.lockFile).toBeUndefined();
    expect(await choose({ "package-lock.json": "{}" })).toMatchObject({ name: "npm", lockFile: "package-lock.json" });
    expect(await choose({ "yarn.lock": "# yarn lockfile v1\n" })).toMatchObject({ name: "yarn", berry: false, range: "1", lockFile: "yarn.lock" });
    expect(await choose({ "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" })).toMatchObject({ name: "pnpm", range: "9" });
    expect(await choose({ "pnpm-lock.yaml": "lockfileVersion: '6.0'\n" })).toMatchObject({ name: "pnpm", range: "8" });
    expect(await choose({ "pnpm-lock.yaml": "lockfileVersion: 5.4\n" })).toMatchObject({ name: "pnpm", range: "7" });
  });

  it("Yarn 2+ from .yarnrc.yml, a Yarn 2+ lock file or packageManager; Plug'n'Play unless nodeLinker says otherwise", async () => {
    const berryLock = "__metadata:\n  version: 6\n  cacheKey: 8\n";
    expect(await choose({ "yarn.lock": berryLock })).toMatchObject({ name: "yarn", berry: true, range: "3", pnp: true });
    expect(await choose({ "yarn.lock": "", ".yarnrc.yml": "nodeLinker: node-modules\n" })).toMatchObject({ berry: true, range: "4", pnp: false });
    expect(await choose({ "yarn.lock": "" }, "yarn@4.5.0")).toMatchObject({ berry: true, range: "4.5.0", reason: "yarn.lock, yarn@4.5.0 from packageManager" });
    expect(await choose({ "yarn.lock": "", ".yarnrc.yml": "" }, "yarn@1.22.22")).toMatchObject({ berry: false, range: "1.22.22" });
  });

  it("packageManager picks among several lock files, and the manager when there is none", async () => {
    const both = { "yarn.lock": "", "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" };
    expect(await choose(both)).toMatchObject({ name: "yarn", ignoredLockFiles: ["pnpm-lock.yaml"] });
    expect(await choose(both, "pnpm@9.12.0")).toMatchObject({ name: "pnpm", range: "9.12.0", ignoredLockFiles: ["yarn.lock"] });
    const declared = await choose({}, "pnpm@9.12.0");
    expect(declared).toMatchObject({ name: "pnpm", range: "9.12.0", reason: "packageManager pnpm, pnpm@9.12.0 from packageManager" });
    expect(declared.lockFile).toBeUndefined();
    expect(await choose({ "package-lock.json": "{}" }, "npm@10.9.0")).toMatchObject({ name: "npm", range: "10.9.0" });
    await expect(choose({}, "bun@1.1.0")).rejects.toThrow(/names bun/);
  });

  it("installs pinned by the lock file, devDependencies included", async () => {
    const store = "/home/b/.pnpm-store";
    expect(managerCommands(await choose({ "yarn.lock": "" }), store).install).toEqual(["yarn", "install", "--frozen-lockfile", "--production=false", "--non-interactive", "--no-progress"]);
    expect(managerCommands(await choose({ "yarn.lock": "", ".yarnrc.yml": "" }), store).install).toEqual(["yarn", "install", "--immutable"]);
    expect(managerCommands(await choose({ "pnpm-lock.yaml": "" }), store).install).toEqual(["pnpm", "install", "--frozen-lockfile", "--prod=false", `--store-dir=${store}`]);
    expect(managerCommands(await choose({}), store)).toMatchObject({ install: ["npm", "install", "--include=dev"], start: "npm start", prune: ["npm", "prune", "--omit=dev"] });
  });
});
