import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import lockfile from "proper-lockfile";
import { describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, ObjectStore, ReleasePhaseRepository, RolloutRepository, type AppLogEntry, type Release } from "@slipway/shared";
import { RuntimeAgent } from "../src/agent";
import { labelApp } from "../../../test/harness/apps";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually, withDeadline } from "../../../test/harness/local-stack";
import { logTail, uploadDir, waitForBuild, writeTree } from "../../../test/harness/stack";
import { stallingRelay } from "../../../test/harness/stalling-relay";
import { useStack } from "../../../test/harness/use-stack";

const used = useStack("agent-stop");

/** Far longer than any deadline below: a stop that waited for them would fail the test. */
const FOREVER_S = "600";
const STOP_DEADLINE_MS = 30_000;

async function deploy(app: string, label: string, files: Record<string, string>) {
  const { stack, work } = used;
  const dir = await writeTree(path.join(work, `${app}-${label}`), files);
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  if (build.error) throw new Error(`build ${build.id} failed: ${build.error}${await logTail(stack.baseUrl, build.id)}`);
  return { version: build.release!, buildId: build.id };
}

const call = (url: string) => fetch(`${used.stack.baseUrl}${url}`, { headers: { Accept: "application/json" } });
const logLines = async (app: string) => (await json<AppLogEntry[]>(await call(`/v1/apps/${app}/logs?limit=5000`))).map((e) => `${e.instanceId} ${e.line}`);
const releaseOf = async (app: string, version: number) => (await json<Release[]>(await call(`/v1/apps/${app}/releases`))).find((r) => r.version === version);
const logged = (app: string, line: string, what: string) => eventually(async () => ((await logLines(app)).includes(line) ? true : undefined), 60_000, what);

/** An agent whose start is left running (it may never finish on its own): `started` settles once it does. */
async function launchAgent(app: string, id: string, env: Record<string, string> = {}) {
  const { stack, work } = used;
  const port = await freePort();
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: id, PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt-${id}`), ...env });
  const store = env.S3_ENDPOINT ? new ObjectStore(config) : stack.api.store;
  const agent = new RuntimeAgent(config, stack.api.redis, store, createLogger("agent-stop-test", "silent"));
  const started = agent.start().then(
    () => "started",
    (error: Error) => `failed: ${error.message}`,
  );
  return { agent, started, url: `http://127.0.0.1:${port}/` };
}

describe("an agent's stop does not wait on a release move", () => {
  it("stops while it waits for another instance's release command, and while running its own: the command is interrupted, its claim given back, no outcome recorded", async () => {
    const app = uniqueApp("stopphase");
    const { version } = await deploy(app, "v1", { "app.py": labelApp("v1"), Procfile: "web: python app.py\nrelease: echo migrating; sleep 600\n" });
    const runner = await launchAgent(app, "a", { RELEASE_COMMAND_TIMEOUT_S: FOREVER_S });
    await logged(app, "a migrating", "the release command to run on a");
    const follower = await launchAgent(app, "b", { RELEASE_COMMAND_TIMEOUT_S: FOREVER_S });
    await eventually(async () => ((await used.stack.api.instances.list(app)).find((i) => i.instanceId === "b")?.state === "starting" ? true : undefined), 60_000, "b to wait for a's command");

    await withDeadline(follower.agent.stop(), STOP_DEADLINE_MS, "the stop of the instance waiting for the release command");
    await withDeadline(runner.agent.stop(), STOP_DEADLINE_MS, "the stop of the instance running the release command");
    expect(await runner.started).toBe("started");
    expect(await follower.started).toBe("started");

    expect(await logLines(app)).toContain(`a release phase of v${version} interrupted: the agent is stopping`);
    expect((await releaseOf(app, version))?.releasePhase).toBeUndefined();
    // Free at once, not after the lease of a command that may run for ten minutes.
    expect(await new ReleasePhaseRepository(used.stack.api.redis, used.stack.keys).claim(app, version, "probe", 1000)).toBe(true);
    // Neither instance ever served the release.
    for (const { url } of [runner, follower]) expect(await fetch(url).then((r) => r.status, () => 0)).not.toBe(200);
  });

  it("stops while a new release waits for its health check: the start is abandoned, the turn given back, the rollout not failed", async () => {
    const app = uniqueApp("stophealth");
    await deploy(app, "v1", { "app.py": labelApp("v1"), Procfile: "web: python app.py\n" });
    const instance = await launchAgent(app, "a", { HEALTH_TIMEOUT_S: FOREVER_S });
    expect(await instance.started).toBe("started");
    expect(await fetch(instance.url).then((r) => r.text())).toBe("v1");

    // Starts, never listens: without the stop, the health check would wait ten minutes.
    const { version: v2 } = await deploy(app, "v2", { "app.py": "import time\nprint('warming up', flush=True)\ntime.sleep(600)\n", Procfile: "web: python app.py\n" });
    await logged(app, "a warming up", "v2 to start on a");
    await withDeadline(instance.agent.stop(), STOP_DEADLINE_MS, "the stop during the health check");

    expect(await logLines(app)).toEqual(expect.arrayContaining([`a start of v${v2} abandoned: the agent is stopping`, `a move to v${v2} abandoned: the agent is stopping`]));
    const rollout = await new RolloutRepository(used.stack.api.redis, used.stack.keys).status(app, v2);
    expect(rollout).toMatchObject({ failures: 0 });
    expect(rollout.state).not.toBe("failed");
    expect(await used.stack.api.redis.zcard(used.stack.keys.rolloutHolders(app, v2))).toBe(0);
    expect((await releaseOf(app, v2))?.state).not.toBe("failed");
  });

  it("stops while it waits for another agent on the host to extract the release", async () => {
    const app = uniqueApp("stoplock");
    const { buildId } = await deploy(app, "v1", { "app.py": labelApp("v1"), Procfile: "web: python app.py\n" });
    const hostCache = path.join(used.work, `${app}-host-cache`);
    // Another agent holds the release's host-wide lock, as if extracting a very large release.
    const entry = path.join(hostCache, app, buildId);
    await mkdir(path.dirname(entry), { recursive: true });
    const unlock = await lockfile.lock(entry, { realpath: false, lockfilePath: `${entry}.lock` });
    try {
      const instance = await launchAgent(app, "a", { HOST_CACHE_DIR: hostCache });
      await eventually(async () => ((await used.stack.api.instances.list(app)).find((i) => i.instanceId === "a")?.state === "restoring" ? true : undefined), 60_000, "the instance to wait on the lock");
      await withDeadline(instance.agent.stop(), STOP_DEADLINE_MS, "the stop while waiting for the host cache lock");
      expect(await instance.started).toBe("started");
      expect(existsSync(entry)).toBe(false);
      expect(await logLines(app)).toContain("a move to v1 abandoned: the agent is stopping");
    } finally {
      await unlock();
    }
  });

  it("stops while storage takes the request and never answers", async () => {
    const app = uniqueApp("stopstore");
    await deploy(app, "v1", { "app.py": labelApp("v1"), Procfile: "web: python app.py\n" });
    const relay = await stallingRelay(new URL(used.stack.env.S3_ENDPOINT!));
    relay.holdAfter(0);
    try {
      // A stalled connection is cut only after ten minutes here: the stop must not wait for that.
      const instance = await launchAgent(app, "a", { S3_ENDPOINT: relay.endpoint, S3_IDLE_TIMEOUT_S: FOREVER_S });
      await eventually(async () => ((await used.stack.api.instances.list(app)).find((i) => i.instanceId === "a")?.state === "restoring" ? true : undefined), 60_000, "the instance to start restoring");
      await withDeadline(instance.agent.stop(), STOP_DEADLINE_MS, "the stop while storage does not answer");
      expect(await instance.started).toBe("started");
      expect(await logLines(app)).toContain("a move to v1 abandoned: the agent is stopping");
    } finally {
      await relay.close();
    }
  });
});
