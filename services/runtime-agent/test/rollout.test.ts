import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, RolloutRepository } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually } from "../../../test/harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../../../test/harness/stack";
import type { RuntimeAgent } from "../src/agent";
import { labelApp } from "../../../test/harness/apps";
import { startAgentOn } from "../../../test/harness/agents";

let stack: InProcessStack;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-rollout-"));
  stack = await startInProcessStack();
});
afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

const webApp = (label: string, fail = false) => labelApp(label, { failToStart: fail });

describe("rolling rollout across instances", () => {
  it("moves a release through the instances at most MAX_UNAVAILABLE at a time; a release failing on the first instance halts, the others keep the old one", async () => {
    const app = uniqueApp("rollout");
    const deploy = async (label: string, fail = false) =>
      waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-${label}`), { "app.py": webApp(label, fail) }))).id);
    await deploy("v1");
    const agents: { agent: RuntimeAgent; url: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: `i-${i}`, PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt-${i}`), HEALTH_TIMEOUT_S: "10", MAX_UNAVAILABLE: "1" });
      agents.push({ agent, url: `http://127.0.0.1:${port}` });
    }
    const bodies = () => Promise.all(agents.map(async ({ url }) => (await fetch(url)).text()));
    try {
      await eventually(async () => ((await bodies()).every((b) => b === "v1") ? true : undefined), 30_000, "v1 everywhere");
      const rollouts = new RolloutRepository(stack.api.redis, stack.keys);

      const broken = await deploy("v2", true);
      await eventually(async () => ((await rollouts.status(app, broken.release!)).state === "failed" ? true : undefined), 30_000, "the rollout to halt");
      // The other two have passed the point where they would have switched once they report the halt.
      const halted = new RegExp(`rollout of v${broken.release} halted`);
      await eventually(async () => ((await stack.api.instances.list(app)).filter((i) => halted.test(i.error ?? "")).length === 2 ? true : undefined), 30_000, "the others to report the halt");
      expect(await bodies()).toEqual(["v1", "v1", "v1"]);
      const status = await rollouts.status(app, broken.release!);
      expect(status).toMatchObject({ state: "failed", successes: 0, failures: 1, maxConcurrent: 1 });
      const releases = await json<{ version: number; state?: string }[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`));
      expect(releases[0]).toMatchObject({ version: broken.release, state: "failed" });
      const instances = await json<{ state: string; release: number; error?: string }[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/instances`));
      expect(instances.filter((i) => i.state === "failed")).toHaveLength(1); // only the canary tried
      expect(instances.filter((i) => i.state === "running" && i.release === 1)).toHaveLength(2);

      const good = await deploy("v3");
      await eventually(async () => ((await bodies()).every((b) => b === "v3") ? true : undefined), 60_000, "v3 everywhere");
      const done = await eventually(async () => {
        const s = await rollouts.status(app, good.release!);
        return s.state === "complete" ? s : undefined;
      }, 10_000, "the rollout to complete");
      expect(done).toMatchObject({ successes: 3, maxConcurrent: 1 });
      expect((await json<{ version: number; state?: string }[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`)))[0]).toMatchObject({ version: good.release, state: "complete" });
    } finally {
      await Promise.all(agents.map(({ agent }) => agent.stop()));
    }
  }, 300_000);
});
