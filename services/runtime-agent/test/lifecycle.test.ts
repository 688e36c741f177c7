import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, packDirectory, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { logTail, spawnAgent, startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../../../test/harness/stack";
import { labelApp } from "../../../test/harness/apps";
import { releaseByHand, startAgentOn } from "../../../test/harness/agents";

let stack: InProcessStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-lifecycle-"));
  stack = await startInProcessStack({ WORKER_CONCURRENCY: "2" });
});
afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

const webApp = (label: string, startDelay = 0) => labelApp(label, { echo: true, startDelayS: startDelay });

async function deploy(app: string, files: Record<string, string>): Promise<BuildView> {
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-${Date.now()}-${Math.random()}`), files))).id);
  if (build.error) throw new Error(`build ${build.id} failed: ${build.error}${await logTail(stack.baseUrl, build.id)}`);
  return build;
}

async function inProcessAgent(app: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const runtimeRoot = path.join(work, `${app}-runtime-${port}`);
  const agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: `i-${port}`, PORT: String(port), RUNTIME_ROOT: runtimeRoot, HEALTH_TIMEOUT_S: "20", ...extra });
  return { agent, url: `http://127.0.0.1:${port}`, runtimeRoot, instanceId: `i-${port}` };
}

/** Whether `pid` runs; a zombie (killed, not yet reaped by its new parent) does not. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

const text = async (url: string) => {
  const response = await fetch(url);
  return response.ok ? response.text() : undefined;
};
const waitForBody = (url: string, prefix: string, timeoutMs = 60_000) =>
  eventually(async () => {
    const body = await text(url).catch(() => undefined);
    return body?.startsWith(prefix) ? body : undefined;
  }, timeoutMs, `${url} to answer ${prefix}`);

describe("release changes", () => {
  it("a steady load sees no failed request while a new release (slow to start) replaces the old one", async () => {
    const app = uniqueApp("swap");
    await deploy(app, { "app.py": webApp("v1") });
    const { agent, url, instanceId } = await inProcessAgent(app);
    try {
      await waitForBody(url, "v1|");
      const v1 = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.instanceId === instanceId && i.state === "running" && i.pid), 10_000, "v1's running report");
      let stop = false;
      const seen = new Set<string>();
      const failures: string[] = [];
      let requests = 0;
      const client = async () => {
        while (!stop) {
          try {
            const response = await fetch(url);
            const body = await response.text();
            requests += 1;
            if (response.status !== 200) failures.push(`${response.status} ${body}`);
            else seen.add(body.split("|")[0]!);
          } catch (error) {
            failures.push(String(error));
          }
        }
      };
      const clients = Array.from({ length: 8 }, client);
      // v2 takes two seconds to listen: v1 must keep serving all that time.
      await deploy(app, { "app.py": webApp("v2", 2) });
      await waitForBody(url, "v2|");
      // The swap ends when v1, drained, has been stopped; the load goes on past that point.
      await eventually(async () => (alive(v1.pid!) ? undefined : true), 30_000, `v1's app ${v1.pid} to be stopped`);
      const atStop = requests;
      await eventually(async () => (requests >= atStop + 50 ? true : undefined), 10_000, "more requests after v1 stopped");
      stop = true;
      await Promise.all(clients);
      expect(failures).toEqual([]);
      expect([...seen].sort()).toEqual(["v1", "v2"]);
      expect(requests).toBeGreaterThan(100);
    } finally {
      await agent.stop();
    }
  });

  it("restarts a crashed app with backoff and reports the crash and the restart count", async () => {
    const app = uniqueApp("crash");
    await deploy(app, { "app.py": webApp("v1") });
    const { agent, url, instanceId } = await inProcessAgent(app);
    try {
      await waitForBody(url, "v1|");
      await fetch(`${url}/crash`).catch(() => undefined);
      const failed = await eventually(async () => {
        const report = (await stack.api.instances.list(app)).find((i) => i.instanceId === instanceId);
        return report?.state === "failed" ? report : undefined;
      }, 10_000, "the crash to be reported");
      expect(failed.error).toMatch(/the app exited \(code 7\); restart 1/);
      await waitForBody(url, "v1|");
      const running = await eventually(async () => {
        const report = (await stack.api.instances.list(app)).find((i) => i.instanceId === instanceId);
        return report?.state === "running" ? report : undefined;
      }, 10_000, "running again");
      expect(running.restarts).toBe(1);
    } finally {
      await agent.stop();
    }
  });
});

describe("reconcile", () => {
  it("catches a release whose notification it missed, on its timer", async () => {
    const app = uniqueApp("missed");
    await deploy(app, { "app.py": webApp("v1") });
    const { agent, url } = await inProcessAgent(app, { RECONCILE_INTERVAL_S: "1" });
    try {
      await waitForBody(url, "v1|");
      const quiet = await waitForBuild(
        stack.baseUrl,
        (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, `${app}-quiet`), { "app.py": webApp("v2") }), "?deploy=false")).id,
      );
      // A release made without any notification, as if the message was lost.
      await stack.api.releases.create(app, quiet.id, "manual");
      await waitForBody(url, "v2|", 30_000);
    } finally {
      await agent.stop();
    }
  });
});

describe("start command and environment", () => {
  it("Procfile over detection, the app's startupCommand over both; the app's env reaches it", async () => {
    const app = uniqueApp("start");
    await stack.api.apps.upsert(app, { env: { GREETING: "hello-env" } });
    const files = { "app.py": webApp("detected"), "Procfile": "web: python app.py from-procfile\n" };
    await deploy(app, files);
    const { agent, url } = await inProcessAgent(app);
    try {
      expect(await waitForBody(url, "detected|")).toBe("detected|hello-env|from-procfile");
      await stack.api.apps.upsert(app, { startupCommand: "python app.py from-startup-command" });
      await deploy(app, files);
      expect(await waitForBody(url, "detected|hello-env|from-startup")).toBe("detected|hello-env|from-startup-command");
    } finally {
      await agent.stop();
    }
  });
});

describe("housekeeping and shell access", () => {
  it("keeps the last KEEP_RELEASES directories, and current/.slipway/profile.sh gives the app's environment", async () => {
    const app = uniqueApp("keep");
    await deploy(app, { "app.py": webApp("v1") });
    const { agent, url, runtimeRoot } = await inProcessAgent(app, { KEEP_RELEASES: "2" });
    try {
      await waitForBody(url, "v1|");
      await deploy(app, { "app.py": webApp("v2") });
      await waitForBody(url, "v2|");
      const v3 = await deploy(app, { "app.py": webApp("v3") });
      await waitForBody(url, "v3|");
      await eventually(async () => ((await readdir(path.join(runtimeRoot, "releases"))).length === 2 ? true : undefined), 10_000, "two release directories");
      expect(await readdir(path.join(runtimeRoot, "releases"))).toContain(v3.id);

      const appPath = path.join(runtimeRoot, "releases", v3.id);
      const environment = `echo "$APP_PATH" && echo "$APP_DATA_PATH" && pwd && python -c 'import sys; print(sys.prefix)'`;
      const expected = [appPath, path.join(runtimeRoot, "data"), appPath, path.join(appPath, "antenv")];
      const marker = JSON.parse(await readFile(path.join(appPath, ".slipway", "restored.json"), "utf8")) as { lower?: string };
      if (marker.lower) {
        // Over an overlay the host's release directory holds only this instance's changes: the
        // whole release is in the app's mount namespace, where an operator enters to use it.
        const report = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.appPath === appPath && i.pid), 10_000, "v3's report");
        const sandboxInit = readFileSync(`/proc/${report.pid}/task/${report.pid}/children`, "utf8").trim().split(" ")[0]!;
        const shell = execFileSync("nsenter", ["--target", sandboxInit, "--mount", "--", "bash", "-c", `. '${appPath}/.slipway/profile.sh' && ${environment}`], { encoding: "utf8" });
        expect(shell.trim().split("\n")).toEqual(expected);
      } else {
        const shell = execFileSync("bash", ["-c", `. '${runtimeRoot}/current/.slipway/profile.sh' && ${environment}`], { encoding: "utf8" });
        expect(shell.trim().split("\n")).toEqual(expected);
      }
    } finally {
      await agent.stop();
    }
  });
});

describe("agent processes", () => {
  it("boots with Redis down and serves the current release from storage's pointer", async () => {
    const app = uniqueApp("noredis");
    await deploy(app, { "app.py": webApp("stored") });
    const deadRedis = `redis://127.0.0.1:${await freePort()}`;
    const port = await freePort();
    const agent = spawnAgent(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt`), REDIS_URL: deadRedis });
    try {
      expect(await waitForBody(`http://127.0.0.1:${port}`, "stored|", 30_000).catch((e) => { throw new Error(`${e.message}\n${agent.output().slice(-3000)}`); })).toBe("stored||");
    } finally {
      // SIGTERM, not SIGKILL: a killed agent would leave the app running after the test.
      agent.child.kill("SIGTERM");
      await agent.exited;
    }
  });

  it("SIGKILLed during extraction, a restarted agent ends on the new release with no partial directory used", async () => {
    const app = uniqueApp("killed");
    // 60 MB that compresses poorly: extraction takes long enough to be caught in the act.
    const { randomBytes } = await import("node:crypto");
    const dir = await writeTree(path.join(work, `${app}-src`), { "app.py": webApp("big") });
    await writeFile(path.join(dir, "blob.bin"), randomBytes(60 * 1024 * 1024));
    const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, 120_000);
    expect(build.status).toBe("succeeded");
    const port = await freePort();
    const runtimeRoot = path.join(work, `${app}-rt`);
    // Extraction happens once per host, into the host cache, and only a finished one is linked into releases/.
    const hostCache = path.join(work, `${app}-host-cache`);
    const env = { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: runtimeRoot, HOST_CACHE_DIR: hostCache };
    const partials = async () => {
      const cached = await readdir(path.join(hostCache, app)).catch(() => [] as string[]);
      const released = await readdir(path.join(runtimeRoot, "releases")).catch(() => [] as string[]);
      return [...cached, ...released].filter((n) => n.startsWith(".partial-"));
    };
    const first = spawnAgent(stack, env);
    await eventually(async () => ((await partials()).length > 0 ? true : undefined), 60_000, "extraction to begin").catch((e) => {
      throw new Error(`${e.message}\n${first.output().slice(-3000)}`);
    });
    first.child.kill("SIGKILL");
    await first.exited;
    expect(await partials()).not.toEqual([]);

    const second = spawnAgent(stack, env);
    try {
      await waitForBody(`http://127.0.0.1:${port}`, "big|", 90_000);
      const names = await readdir(path.join(runtimeRoot, "releases"));
      expect(names).toEqual([build.id]);
      expect(existsSync(path.join(runtimeRoot, "releases", build.id, ".slipway/restored.json"))).toBe(true);
      // What the killed extraction left is cleared once the new release serves.
      await eventually(async () => ((await partials()).length === 0 ? true : undefined), 30_000, "the killed extraction's leftovers removed");
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  }, 180_000);

  // Sandboxed, an app dies with its agent (test/security/app-sandbox.test.ts); without the sandbox
  // it would outlive it, and the next agent must stop it.
  it("with SANDBOX=off, an agent SIGKILLed while serving leaves its app running; the next agent on that RUNTIME_ROOT stops it before serving", async () => {
    const app = uniqueApp("orphan");
    await deploy(app, { "app.py": webApp("v1") });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt`), LOG_LEVEL: "info", SANDBOX: "off" };
    const first = spawnAgent(stack, env);
    await waitForBody(url, "v1|");
    const { pid } = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.state === "running" && i.pid), 10_000, "a running report");
    first.child.kill("SIGKILL");
    await first.exited;
    expect(alive(pid!)).toBe(true);

    const second = spawnAgent(stack, env);
    try {
      await eventually(async () => (alive(pid!) ? undefined : true), 30_000, `the orphaned app ${pid} to be stopped\n${second.output().slice(-2000)}`);
      await waitForBody(url, "v1|");
      const report = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.state === "running" && i.pid && i.pid !== pid), 10_000, "the new app's report");
      expect(alive(report.pid!)).toBe(true);
      expect(second.output()).toContain(`stopped app process ${pid}, left running by an agent that was killed`);
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  });

  it("SIGTERM drains, stops the app and exits 0", async () => {
    const app = uniqueApp("term");
    await deploy(app, { "app.py": webApp("v1") });
    const port = await freePort();
    const agent = spawnAgent(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-rt`) });
    await waitForBody(`http://127.0.0.1:${port}`, "v1|");
    const report = await eventually(async () => (await stack.api.instances.list(app)).find((i) => i.state === "running" && i.pid), 10_000, "a running report");
    agent.child.kill("SIGTERM");
    expect(await agent.exited).toBe(0);
    expect(() => process.kill(report.pid!, 0)).toThrow();
  });
});

describe("Oryx-built Node releases", () => {
  async function oryxNodeBuild(app: string, withOutput: boolean) {
    const buildId = `oryxnode${Math.random().toString(16).slice(2, 14)}`;
    const out = await writeTree(path.join(work, buildId, "out"), {
      "package.json": JSON.stringify({ name: "oryx-node", version: "1.0.0", scripts: { start: "node server.js" } }),
      "server.js": "const greet = require('greeter'); require('http').createServer((q, s) => s.end(greet('oryx node'))).listen(process.env.PORT, '127.0.0.1');\n",
    });
    const modules = await writeTree(path.join(work, buildId, "modules"), { "greeter/index.js": "module.exports = (n) => `hello ${n}`;\n", "greeter/package.json": '{"name":"greeter","main":"index.js"}' });
    if (withOutput) await stack.api.store.putBuffer(storageKeys.artifact(app, buildId), await (await import("node:fs/promises")).readFile((await packDirectory(out, path.join(work, buildId, "o.tgz"))).file));
    await stack.api.store.putBuffer(storageKeys.artifact(app, buildId, "node_modules.tar.gz"), await (await import("node:fs/promises")).readFile((await packDirectory(modules, path.join(work, buildId, "m.tgz"))).file));
    await stack.api.store.putBuffer(
      storageKeys.manifest(app, buildId),
      ['NodeVersion="20.11.1"', 'nodeBuildCommandsFile="/tmp/zipdeploy/extracted/oryx-build-commands.txt"', 'Frameworks="Express"', 'compressedNodeModulesFile="node_modules.tar.gz"', `OperationId="${buildId}"`, 'SourceDirectoryInBuildContainer="/tmp/8dc468296f8427e"', 'PlatformName="nodejs"', 'CompressDestinationDir="false"', ""].join("\n"),
    );
    return { buildId, version: await releaseByHand(stack, app, buildId) };
  }

  it("restores the output tarball plus the separate node_modules tarball and runs npm start; without an output tarball it says why", async () => {
    const app = uniqueApp("oryxnode");
    await stack.api.apps.upsert(app);
    const { agent, url, instanceId } = await inProcessAgent(app);
    try {
      await oryxNodeBuild(app, true);
      expect(await waitForBody(url, "hello")).toBe("hello oryx node");
      const { version } = await oryxNodeBuild(app, false);
      const report = await eventually(async () => {
        const r = (await stack.api.instances.list(app)).find((i) => i.instanceId === instanceId);
        return r?.state === "failed" && r.release === version ? r : undefined;
      }, 20_000, "the uncompressed build to be refused");
      expect(report.error).toMatch(/uncompressed Oryx output \(CompressDestinationDir="false"\)/);
      expect(await text(url)).toBe("hello oryx node");
    } finally {
      await agent.stop();
    }
  });
});

