import { execFileSync } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { extractArtifact, uploadDir, waitForBuild, writeTree, type BuildView } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";
import { buildWheel } from "../../../test/harness/wheels";

const { stack, work } = useStack("cache", {
  env: async (work) => {
    const wheels = path.join(work, "wheels");
    await mkdir(wheels);
    buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "cached tool ok" });
    buildWheel(wheels, { name: "other-tool", version: "2.0", script: "other-tool", message: "other" });
    return { PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" };
  },
});

const logOf = (build: BuildView) => stack.api.store.getText(storageKeys.buildLog(build.app, build.id));
const rebuild = async (app: string, body?: object) => {
  const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/rebuild`, {
    method: "POST",
    ...(body ? { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {}),
  });
  return response;
};
const rebuildAndWait = async (app: string, body?: object) => {
  const response = await rebuild(app, body);
  expect(response.status).toBe(202);
  return waitForBuild(stack.baseUrl, (await json<BuildView>(response)).id);
};

describe("dependency cache", () => {
  it("a rebuild with unchanged requirements restores the venv instead of reinstalling; noCache bypasses it", async () => {
    const app = uniqueApp("cache");
    const dir = await writeTree(path.join(work, app), { "app.py": "", "requirements.txt": "hello-tool==1.0\n" });
    const cold = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
    expect(cold.status).toBe("succeeded");
    expect(await logOf(cold)).toMatch(/Dependency cache miss for antenv[\s\S]*Running pip install[\s\S]*Saved antenv to the dependency cache/);

    const warm = await rebuildAndWait(app);
    expect(warm.status).toBe("succeeded");
    expect(warm.release).toBe(2);
    const warmLog = await logOf(warm);
    expect(warmLog).toContain("Dependency cache hit: restored antenv");
    expect(warmLog).not.toContain("Running pip install");
    // The restored venv was relocated to this build's directory, so the runtime can relocate it again.
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, warm.id)));
    const out = await extractArtifact(stack, warm, work);
    expect(await readFile(path.join(out, "antenv/bin/activate"), "utf8")).toContain(`${manifest.sourceDirectoryInBuildContainer}/antenv`);
    const moved = path.join(out, "antenv");
    const { relocateVenv } = await import("@slipway/shared");
    await relocateVenv(moved, path.join(manifest.sourceDirectoryInBuildContainer!, "antenv"), moved);
    expect(execFileSync(path.join(moved, "bin/hello-tool"), { encoding: "utf8" }).trim()).toBe("cached tool ok");

    const fresh = await rebuildAndWait(app, { noCache: true });
    expect(fresh.status).toBe("succeeded");
    const freshLog = await logOf(fresh);
    expect(freshLog).toContain("Dependency cache bypassed (noCache)");
    expect(freshLog).toContain("Running pip install");
  });

  it("changed requirements miss the cache", async () => {
    const app = uniqueApp("cache");
    await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-a`), { "app.py": "", "requirements.txt": "hello-tool==1.0\n" }))).id);
    const changed = await waitForBuild(
      stack.baseUrl,
      (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-b`), { "app.py": "", "requirements.txt": "hello-tool==1.0\nother-tool==2.0\n" }))).id,
    );
    expect(await logOf(changed)).toContain("Dependency cache miss for antenv");
  });

  it("caches node_modules by lockfile", async () => {
    const app = uniqueApp("nodecache");
    // Vendored in the app's own tree: a build sees nothing of the host beyond its source.
    const dir = await writeTree(path.join(work, app), {
      "vendor/tiny/package.json": JSON.stringify({ name: "tiny", version: "1.0.0" }),
      "vendor/tiny/index.js": "module.exports = 1;\n",
      "package.json": JSON.stringify({ name: "n", version: "1.0.0", dependencies: { tiny: "file:vendor/tiny" } }),
    });
    execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: dir });
    const cold = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
    expect(await logOf(cold)).toContain("Running npm ci");
    const warm = await rebuildAndWait(app);
    expect(await logOf(warm)).toContain("Skipping npm install: node_modules restored from the cache");
    expect(await readFile(path.join(await extractArtifact(stack, warm, work), "node_modules/tiny/index.js"), "utf8")).toBe("module.exports = 1;\n");
  });

  it("rebuild answers 404 for an unknown app, 400 for a bad body", async () => {
    expect((await rebuild(uniqueApp())).status).toBe(404);
    const app = uniqueApp();
    await stack.api.apps.upsert(app);
    const noSource = await rebuild(app);
    expect(noSource.status).toBe(409);
    expect((await rebuild(app, { noCache: "yes" })).status).toBe(400);
  });
});
