import { mkdtemp, readdir } from "node:fs/promises";
import path from "node:path";
import { expect } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "./env";
import { json } from "./http";
import { extractArtifact, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "./stack";

/** Builds of small Python apps on an in-process stack, and what tests read back from them, scratch under `work`. */
export function pythonBuilds(stack: () => InProcessStack, work: () => string) {
  const logOf = (build: BuildView) => stack().api.store.getText(storageKeys.buildLog(build.app, build.id));

  async function buildApp(files: Record<string, string>, options: { app?: string; buildEnv?: Record<string, string> } = {}) {
    const app = options.app ?? uniqueApp("py");
    if (options.buildEnv) await stack().api.apps.upsert(app, { buildEnv: options.buildEnv });
    const dir = await writeTree(await mkdtemp(path.join(work(), `${app}-`)), files);
    const build = await waitForBuild(stack().baseUrl, (await uploadDir(stack().baseUrl, app, dir)).id, 300_000);
    return { app, build, log: await logOf(build) };
  }

  async function rebuild(app: string) {
    const response = await fetch(`${stack().baseUrl}/v1/apps/${app}/rebuild`, { method: "POST" });
    expect(response.status).toBe(202);
    const build = await waitForBuild(stack().baseUrl, (await json<BuildView>(response)).id, 300_000);
    return { build, log: await logOf(build) };
  }

  /** The built venv's site-packages, from the build's artifact. */
  async function sitePackages(build: BuildView): Promise<string> {
    const out = await extractArtifact(stack(), build, work());
    const lib = path.join(out, "antenv", "lib");
    return path.join(lib, (await readdir(lib))[0]!, "site-packages");
  }

  return { logOf, buildApp, rebuild, sitePackages };
}
