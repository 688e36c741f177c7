import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { sandboxUid } from "@slipway/shared/sandbox";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { collidingInstanceIds } from "../harness/uids";
import { parseProbe, PROBE_SOURCE } from "./probe";
import { spawnAgent, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";

/**
 * A hostile app, run by real agent processes whose environment holds the platform's secrets:
 * what it can read, reach and write, and what its limits do.
 */

// Serves the probe's findings on /probe, allocates without bound on /hog, answers "ok" otherwise.
const APP = `
import io, os, contextlib, runpy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hog":
            hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]
        if self.path == "/probe":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                runpy.run_path("probe.py")
            body = out.getvalue().encode()
        else:
            body = b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

let stack: InProcessStack;
let work: string;
const app = uniqueApp("hostile");
const agents: ReturnType<typeof spawnAgent>[] = [];
const instances: { id: string; url: string; root: string }[] = [];

const report = async (id: string) => (await stack.api.instances.list(app)).find((i) => i.instanceId === id);

async function startInstance(id: string, extraEnv: Record<string, string> = {}) {
  const port = await freePort();
  const root = path.join(work, `runtime-${id}`);
  const agent = spawnAgent(stack, { APP: app, INSTANCE_ID: id, PORT: String(port), RUNTIME_ROOT: root, API_TOKEN: "agent-api-token-secret", ...extraEnv });
  agents.push(agent);
  const instance = { id, url: `http://127.0.0.1:${port}`, root };
  instances.push(instance);
  await eventually(async () => ((await fetch(instance.url).then((r) => r.text(), () => "")) === "ok" ? true : undefined), 60_000, `${id} serving\n${agent.output()}`);
  return { ...instance, agent };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-app-security-"));
  stack = await startInProcessStack();
  const dir = await writeTree(path.join(work, "src"), { "app.py": APP, "probe.py": PROBE_SOURCE });
  await stack.api.apps.upsert(app, {});
  const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  expect(built.status).toBe("succeeded");
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.child.kill("SIGKILL");
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

describe("app sandbox", () => {
  it("two instances on a host whose names derive the same uid still run as two uids, each owning its own data", async () => {
    const [first, second] = collidingInstanceIds(app, "twin-");
    const started = [await startInstance(first), await startInstance(second)];
    const uids = await Promise.all(started.map(async (instance) => parseProbe(await (await fetch(`${instance.url}/probe`)).text()).uid));
    expect(uids[0]).toBe(sandboxUid("app", `${app}/${first}`, 200_000));
    expect(uids[1]).not.toBe(uids[0]);
    for (const [index, instance] of started.entries()) expect((await stat(path.join(instance.root, "data"))).uid).toBe(uids[index]);
  });

  it("an app runs as its instance's own uid, reads no platform secret, and cannot touch another instance", async () => {
    const one = await startInstance("i-1");
    const two = await startInstance("i-2");
    const other = (await report("i-2"))!;
    const ports = { redis: new URL(stack.env.REDIS_URL!).port, s3: new URL(stack.env.S3_ENDPOINT!).port, api: new URL(stack.baseUrl).port };
    await stack.api.apps.upsert(app, {
      env: {
        PROBE_REDIS_PORT: ports.redis,
        PROBE_CONNECT: `127.0.0.1:${ports.redis} 127.0.0.1:${ports.s3}`,
        PROBE_WRITE: [path.join(other.appPath!, "app.py"), path.join(two.root, "current", "app.py"), path.join(one.root, "releases", "planted.txt")].join(" "),
        PROBE_READ: [path.join(other.appPath!, "app.py"), "/proc/1/environ", "/etc/shadow"].join(" "),
      },
    });
    // A restart picks up the env (config changes roll out as releases only from issue 13 on).
    one.agent.child.kill("SIGTERM");
    await one.agent.exited;
    const again = await startInstance("i-1");
    const probe = parseProbe(await (await fetch(`${again.url}/probe`)).text());

    expect(probe.uid).toBe(sandboxUid("app", `${app}/i-1`, 200_000));
    expect(probe.uid).not.toBe(sandboxUid("app", `${app}/i-2`, 200_000));
    expect(probe.pids.length).toBeLessThan(6);
    for (const secret of [stack.env.S3_SECRET_KEY!, stack.env.REDIS_URL!, "agent-api-token-secret"]) {
      expect(probe.environ).not.toContain(secret);
    }
    for (const [file, outcome] of Object.entries(probe.write)) expect(outcome, file).not.toBe("written");
    for (const [file, outcome] of Object.entries(probe.read)) expect(outcome, file).not.toBe("read");
    // The app keeps the host's network, so the control plane must refuse it for want of credentials.
    expect(probe.connect[`127.0.0.1:${ports.redis}`]).toMatch(/NOAUTH/);
    expect(probe.connect[`127.0.0.1:${ports.s3}`]).toMatch(/HTTP\/1\.[01] 40[03]/);
    expect(await (await fetch(`${two.url}/`)).text()).toBe("ok");
  });

  it("a memory hog is killed at its limit and restarted, with that reason reported", async () => {
    const hog = await startInstance("i-hog", { APP_MEMORY_MB: "256" });
    await fetch(`${hog.url}/hog`).catch(() => undefined);
    const failed = await eventually(async () => {
      const r = await report("i-hog");
      return r?.error?.includes("out of memory") ? r : undefined;
    }, 30_000, "the out-of-memory report");
    expect(failed.error).toMatch(/the app exited \(out of memory \(limit 256 MiB\)\); restart 1/);
    await eventually(async () => ((await report("i-hog"))?.state === "running" ? true : undefined), 30_000, "the restart");
    expect(await (await fetch(hog.url)).text()).toBe("ok");
  });

  it("an agent killed outright takes its app with it: nothing runs as the app's uid afterwards", async () => {
    const gone = await startInstance("i-kill");
    const uid = sandboxUid("app", `${app}/i-kill`, 200_000);
    const running = () => spawnSync("pgrep", ["-u", String(uid)]).status === 0;
    expect(running()).toBe(true);
    gone.agent.child.kill("SIGKILL");
    await eventually(async () => (running() ? undefined : true), 10_000, "the app's processes to end");
  });
});

