import path from "node:path";
import { describe, expect, it } from "vitest";
import { freePort, ReleasePhaseRepository, type AppLogEntry, type Release } from "@slipway/shared";
import { startAgentOn } from "../../../test/harness/agents";
import { labelApp } from "../../../test/harness/apps";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually } from "../../../test/harness/local-stack";
import { logTail, uploadDir, waitForBuild, writeTree } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";

const used = useStack("release-phase");

/** The release line checks it runs where the app would (its directory, its env, a data directory) and says so. */
const procfile = (label: string) => `web: python app.py\nrelease: echo "migrating ${label} $GREETING" && test "$PWD" = "$APP_PATH" && test -d "$APP_DATA_PATH"\n`;

async function deploy(app: string, label: string) {
  const { stack, work } = used;
  const dir = await writeTree(path.join(work, `${app}-${label}`), { "app.py": labelApp(label), Procfile: procfile(label) });
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  if (build.error) throw new Error(`build ${build.id} failed: ${build.error}${await logTail(stack.baseUrl, build.id)}`);
  return build.release!;
}

const call = (url: string, method = "GET", body?: unknown) =>
  fetch(`${used.stack.baseUrl}${url}`, { method, headers: { "Content-Type": "application/json", Accept: "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const releaseOf = async (app: string, version: number) => (await json<Release[]>(await call(`/v1/apps/${app}/releases`))).find((r) => r.version === version);
const logsOf = (app: string) => call(`/v1/apps/${app}/logs?limit=5000`).then((r) => json<AppLogEntry[]>(r));
const linesOf = (logs: AppLogEntry[], stream: AppLogEntry["stream"], line: string) => logs.filter((e) => e.stream === stream && e.line === line);

describe("release phase", () => {
  it("a Procfile release: line runs once per release across two instances, before either serves it; the app's releaseCommand wins, and its failure keeps every instance on the old release", async () => {
    const { stack, work } = used;
    const app = uniqueApp("relphase");
    await call(`/v1/apps/${app}`, "PUT", { env: { GREETING: "hi" } });
    const v1 = await deploy(app, "v1");
    // Two instances with nothing to serve yet start together: neither joins a rollout queue.
    const agents = await Promise.all(
      ["a", "b"].map(async (id) => {
        const port = await freePort();
        const agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: id, PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt-${id}`), HEALTH_TIMEOUT_S: "20" });
        return { agent, url: `http://127.0.0.1:${port}` };
      }),
    );
    const bodies = () => Promise.all(agents.map(({ url }) => fetch(url).then((r) => r.text(), () => "")));
    const everywhere = (label: string) => eventually(async () => ((await bodies()).every((b) => b === label) ? true : undefined), 60_000, `${label} everywhere`);

    /** Ran once, on one instance, and finished before any instance switched traffic to it. */
    const ranOnceBeforeServing = async (label: string, version: number) => {
      const logs = await eventually(async () => {
        const all = await logsOf(app);
        return linesOf(all, "system", `traffic switched to v${version}`).length === 2 ? all : undefined;
      }, 10_000, `both switches to v${version} in the log`);
      expect(linesOf(logs, "stdout", `migrating ${label} hi`)).toHaveLength(1);
      const done = linesOf(logs, "system", `release phase of v${version} succeeded (exit code 0)`);
      expect(done).toHaveLength(1);
      for (const switched of linesOf(logs, "system", `traffic switched to v${version}`)) expect(Date.parse(switched.time)).toBeGreaterThanOrEqual(Date.parse(done[0]!.time));
      expect((await releaseOf(app, version))?.releasePhase).toMatchObject({ state: "succeeded", exitCode: 0, instanceId: done[0]!.instanceId, outputTail: `migrating ${label} hi` });
    };

    try {
      await everywhere("v1");
      await ranOnceBeforeServing("v1", v1);

      // A rolling release: the canary runs it while the other waits for its turn.
      const v2 = await deploy(app, "v2");
      await everywhere("v2");
      await ranOnceBeforeServing("v2", v2);

      const put = await call(`/v1/apps/${app}`, "PUT", { releaseCommand: "echo failing migration; exit 4" });
      expect(put.status).toBe(200);
      expect(await json<{ releaseCommand?: string }>(put)).toMatchObject({ releaseCommand: "echo failing migration; exit 4" });
      const v3 = await deploy(app, "v3");
      // Nothing a running process started with changed: the setting made no config release of its own.
      expect(v3).toBe(v2 + 1);
      const failed = await eventually(async () => {
        const release = await releaseOf(app, v3);
        return release?.state === "failed" && release.releasePhase ? release : undefined;
      }, 60_000, `v${v3} marked failed`);
      expect(failed.releasePhase).toMatchObject({ state: "failed", exitCode: 4, command: "echo failing migration; exit 4", outputTail: "failing migration" });
      const halted = new RegExp(`rollout of v${v3} halted`);
      await eventually(async () => ((await stack.api.instances.list(app)).some((i) => halted.test(i.error ?? "")) ? true : undefined), 30_000, "the other instance to report the halt");
      const instances = await stack.api.instances.list(app);
      expect(instances.find((i) => i.state === "failed")?.error).toMatch(/the release command failed \(exit code 4\)/);
      expect(await bodies()).toEqual(["v2", "v2"]);
      const logs = await logsOf(app);
      expect(linesOf(logs, "stdout", "failing migration")).toHaveLength(1);
      expect(logs.filter((e) => e.line.startsWith("migrating v3"))).toHaveLength(0);

      // The instance that halted, restarted with nothing serving, follows the recorded outcome instead of running the command again.
      const id = instances.find((i) => halted.test(i.error ?? ""))!.instanceId;
      const restarted = agents[id === "a" ? 0 : 1]!;
      await restarted.agent.stop();
      const port = Number(new URL(restarted.url).port);
      restarted.agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: id, PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt-${id}`), HEALTH_TIMEOUT_S: "20" });
      const report = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.instanceId === id && i.state === "failed" && i.release === v3), 30_000, "the restarted instance to report v3 failed");
      expect(report.error).toMatch(/the release command failed \(exit code 4\) on [ab]: failing migration/);
      expect(linesOf(await logsOf(app), "stdout", "failing migration")).toHaveLength(1);
    } finally {
      await Promise.all(agents.map(({ agent }) => agent.stop()));
    }
  });

  it("a claim is refused once the outcome is recorded, also to an instance that read 'no outcome' just before: the check and the claim are one step", async () => {
    const { stack } = used;
    const phases = new ReleasePhaseRepository(stack.api.redis, stack.keys);
    const app = uniqueApp("relclaim");
    await stack.api.redis.hset(stack.keys.releases(app), "1", JSON.stringify({ version: 1 }));
    expect(await phases.outcome(app, 1)).toBeUndefined();
    expect(await phases.claim(app, 1, "a", 60_000)).toBe(true);
    expect(await phases.claim(app, 1, "b", 60_000)).toBe(false);
    await phases.record(app, 1, { state: "succeeded", command: "true", exitCode: 0, instanceId: "a", finishedAt: new Date().toISOString(), outputTail: "" });
    // Recording gave the claim back: b, which found no outcome above, must still not run the command.
    expect(await phases.claim(app, 1, "b", 60_000)).toBe(false);
  });
});
