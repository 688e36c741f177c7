import { stat } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, storageKeys, type AppResponse, type InstanceReport, type Release } from "@slipway/shared";
import { labelApp } from "../../../test/harness/apps";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { eventually } from "../../../test/harness/local-stack";
import { logTail, uploadDir, waitForBuild, writeTree } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";
import { RuntimeAgent } from "../src/agent";

const used = useStack("config-release");

async function deploy(app: string, files: Record<string, string>) {
  const { stack, work } = used;
  const dir = await writeTree(path.join(work, `${app}-${Date.now()}-${Math.random()}`), files);
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  if (build.error) throw new Error(`build ${build.id} failed: ${build.error}${await logTail(stack.baseUrl, build.id)}`);
  return build;
}

/** An in-process agent; `runtimeRoot` given, a restart of an earlier one. */
async function startAgent(app: string, runtimeRoot?: string) {
  const { stack, work } = used;
  const port = await freePort();
  const root = runtimeRoot ?? path.join(work, `${app}-runtime-${port}`);
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: root, HEALTH_TIMEOUT_S: "20" });
  const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
  await agent.start();
  return { agent, url: `http://127.0.0.1:${port}`, runtimeRoot: root };
}

const call = (url: string, method: string, body?: unknown) =>
  fetch(`${used.stack.baseUrl}${url}`, { method, headers: { "Content-Type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

const bodyOf = (url: string) => fetch(url).then((r) => (r.ok ? r.text() : undefined), () => undefined);
const waitForBody = (url: string, expected: string, timeoutMs = 60_000) =>
  eventually(async () => ((await bodyOf(url)) === expected ? true : undefined), timeoutMs, `${url} to answer ${expected}`);

const releasesOf = async (app: string) => json<Release[]>(await call(`/v1/apps/${app}/releases`, "GET"));
const instanceReport = (app: string) => eventually(async () => (await used.stack.api.instances.list(app))[0], 10_000, "an instance report");
const failedOn = (app: string, version: number) =>
  eventually(async () => {
    const report: InstanceReport | undefined = (await used.stack.api.instances.list(app))[0];
    return report?.state === "failed" && report.release === version ? report : undefined;
  }, 60_000, `the instance to report v${version} failed`);

describe("config releases", () => {
  it("an env change via PATCH reaches the running app without a deploy, as a config release of the same build; a config that breaks the app keeps the old process serving", async () => {
    const app = uniqueApp("cfg");
    await call(`/v1/apps/${app}`, "PUT", { env: { GREETING: "one" } });
    const build = await deploy(app, { "app.py": labelApp("v1", { echo: true }) });
    const { agent, url } = await startAgent(app);
    try {
      await waitForBody(url, "v1|one|");
      const patched = await call(`/v1/apps/${app}/config`, "PATCH", { set: { GREETING: "two" } });
      expect(patched.status).toBe(200);
      expect((await json<AppResponse>(patched)).env).toEqual({ GREETING: "two" });
      await waitForBody(url, "v1|two|");
      const [config] = await releasesOf(app);
      expect(config).toMatchObject({ reason: "config", buildId: build.id });
      expect(await eventually(async () => ((await instanceReport(app)).release === config!.version ? true : undefined), 10_000, "the config release reported")).toBe(true);

      // Settings that change nothing a process starts with make no release.
      const count = (await releasesOf(app)).length;
      expect((await call(`/v1/apps/${app}`, "PUT", { env: { GREETING: "two" }, buildEnv: { X: "1" } })).status).toBe(200);
      expect((await releasesOf(app)).length).toBe(count);

      expect((await call(`/v1/apps/${app}`, "PUT", { startupCommand: "python -c 'import sys; sys.exit(3)'" })).status).toBe(200);
      const [broken] = await releasesOf(app);
      expect(broken).toMatchObject({ reason: "config", buildId: build.id });
      const report = await failedOn(app, broken!.version);
      expect(report.error).toMatch(/the app exited \(code 3\)/);
      expect(await bodyOf(url)).toBe("v1|two|");
      await eventually(async () => ((await releasesOf(app))[0]!.state === "failed" ? true : undefined), 10_000, "the release marked failed");
    } finally {
      await agent.stop();
    }
  });
});

/** A web app whose body contains "ready" only on /ready. */
const readyApp = (label: string) =>
  labelApp(label).replace('body = "' + label + '".encode()', `body = ("${label} ready" if self.path == "/ready" else "${label}").encode()`);

describe("per-app health checks", () => {
  it("a release must answer the app's health path with the expected text: one that does not keeps the old one serving and is reported failed", async () => {
    const app = uniqueApp("hc");
    const put = await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/ready", timeoutS: 4, expectText: "ready" } });
    expect(await json<AppResponse>(put)).toMatchObject({ healthCheck: { path: "/ready", timeoutS: 4, expectText: "ready" } });
    expect(readyApp("v1")).toContain("ready");
    const v1 = await deploy(app, { "app.py": readyApp("v1") });
    const { agent, url } = await startAgent(app);
    try {
      await waitForBody(url, "v1");
      await deploy(app, { "app.py": labelApp("v2") });
      const [v2] = await releasesOf(app);
      const report = await failedOn(app, v2!.version);
      expect(report.error).toMatch(/answered 200 on \/ready without the text "ready" \(the app's healthCheck expects it\) for 4 s/);
      expect(await bodyOf(url)).toBe("v1");
      expect((await releasesOf(app))[0]!.state).toBe("failed");

      // Changing the health check is a config release too: "/" lacks the text, so it fails and v1 stays.
      await call(`/v1/apps/${app}/releases`, "POST", { buildId: v1.id });
      await waitForBody(url, "v1");
      await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/", timeoutS: 3, expectText: "ready" } });
      const [config] = await releasesOf(app);
      expect(config).toMatchObject({ reason: "config", buildId: v1.id });
      await failedOn(app, config!.version);
      expect(await bodyOf(url)).toBe("v1");
    } finally {
      await agent.stop();
    }
  });
});

describe("readiness", () => {
  it("an app with no route at / (an API, a Django URLconf without a root) goes live on any HTTP answer; an app's own healthCheck still wants 2xx or 3xx", async () => {
    const app = uniqueApp("no-root");
    await deploy(app, { "app.py": answering(404, "v1") });
    const { agent, url } = await startAgent(app);
    try {
      const served = async () => {
        const answer = await fetch(url).catch(() => undefined);
        return answer ? { status: answer.status, body: await answer.text() } : undefined;
      };
      await eventually(async () => ((await served())?.body === "v1" ? true : undefined), 60_000, "the 404-answering app served");
      expect(await served()).toEqual({ status: 404, body: "v1" });
      expect((await instanceReport(app)).state).toBe("running");

      await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/", timeoutS: 3 } });
      const [config] = await releasesOf(app);
      const report = await failedOn(app, config!.version);
      expect(report.error).toMatch(/answered 404 on \/ \(the app's healthCheck wants 2xx or 3xx\) for 3 s/);
      expect(await served()).toEqual({ status: 404, body: "v1" });
    } finally {
      await agent.stop();
    }
  });
});

describe("App Service's old paths", () => {
  it("a startup script that sources /antenv/bin/activate and cds to /home/site/wwwroot still serves; the build log names each line and the $APP_PATH fix", async () => {
    const app = uniqueApp("legacy-paths");
    // set -e: a path that is not there stops the script, and the app never starts.
    const startup = ["#!/bin/bash", "set -e; source /antenv/bin/activate", "cd /home/site/wwwroot", "exec python app.py", ""].join("\n");
    const build = await deploy(app, { "requirements.txt": "", "startup.sh": startup, Procfile: "web: bash startup.sh\n", "app.py": whereAmI });
    const log = await used.stack.api.store.getText(storageKeys.buildLog(app, build.id));
    expect(log).toContain("Warning: startup.sh line 2 uses /antenv/bin/activate, where App Service kept the venv before each instance got its own $APP_PATH: write $APP_PATH/antenv/bin/activate (or drop the line: antenv is already active).");
    expect(log).toContain("Warning: startup.sh line 3 uses /home/site/wwwroot, where App Service kept the app before each instance got its own $APP_PATH: write $APP_PATH.");
    const { agent, url } = await startAgent(app);
    try {
      const answer = await eventually(async () => {
        const body = await bodyOf(url);
        return body?.startsWith("{") ? (JSON.parse(body) as { venv: string; cwd: string; appPath: string }) : undefined;
      }, 60_000, "the app started by its startup script");
      // The venv activate set is the release's own, relocated; `cd /home/site/wwwroot` led to the release.
      expect(answer.venv).toBe(path.join(answer.appPath, "antenv"));
      expect(answer.cwd).toBe(answer.appPath);
    } finally {
      await agent.stop();
    }
  });
});

describe("files written under $APP_PATH", () => {
  it("are told once in the app log, naming APP_DATA_PATH; what the app keeps in APP_DATA_PATH and bytecode caches are not", async () => {
    const app = uniqueApp("app-path-writes");
    const writer = `
import os, pathlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import helper  # compiled into __pycache__: not the app's data
pathlib.Path(os.environ["APP_DATA_PATH"], "kept.db").write_text("kept")
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        os.makedirs("uploads", exist_ok=True)
        pathlib.Path("uploads", "avatar.png").write_text("lost at the next release")
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;
    await deploy(app, { "app.py": writer, "helper.py": "VALUE = 1\n" });
    const { stack } = used;
    const port = await freePort();
    const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(used.work, `${app}-runtime`), HEALTH_TIMEOUT_S: "20", APP_PATH_WRITES_CHECK_S: "1" });
    const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
    await agent.start();
    try {
      await waitForBody(`http://127.0.0.1:${port}`, "ok");
      const logs = () => fetch(`${stack.baseUrl}/v1/apps/${app}/logs?limit=1000`, { headers: { Accept: "application/json" } });
      const warnings = async () => (await json<{ stream: string; line: string }[]>(await logs())).filter((entry) => entry.stream === "system" && entry.line.includes("under $APP_PATH"));
      const [warning] = await eventually(async () => ((await warnings()).length ? warnings() : undefined), 30_000, "the warning in the app log");
      expect(warning!.line).toBe(`the app wrote $APP_PATH/uploads/avatar.png: files under $APP_PATH belong to this release and are lost at the next one; keep data in $APP_DATA_PATH (${path.join(used.work, `${app}-runtime`, "data")}), which persists`);
      // Once per release, however often it writes.
      await fetch(`http://127.0.0.1:${port}`);
      await agent.releaseWritesChecked();
      expect(await warnings()).toHaveLength(1);
    } finally {
      await agent.stop();
    }
  });
});

/** Answers with its venv, working directory and APP_PATH. */
const whereAmI = `
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"venv": os.environ.get("VIRTUAL_ENV"), "cwd": os.getcwd(), "appPath": os.environ["APP_PATH"]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

/** Answers every GET with `status` and `body`. */
const answering = (status: number, body: string) => `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(${status}); self.send_header("Content-Length", "${body.length}"); self.end_headers(); self.wfile.write(b"${body}")
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

/** Appends its label to $APP_DATA_PATH/boots at each start and answers what the file holds. */
const bootCounter = (label: string) => `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
boots = os.path.join(os.environ["APP_DATA_PATH"], "boots")
with open(boots, "a") as f:
    f.write("${label},")
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(boots).read().encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

describe("persistent data", () => {
  it("a file written to APP_DATA_PATH survives a new release and an agent restart; the directory is the app's own, outside releases/", async () => {
    const app = uniqueApp("data");
    await deploy(app, { "app.py": bootCounter("v1") });
    const first = await startAgent(app);
    try {
      await waitForBody(first.url, "v1,");
      await deploy(app, { "app.py": bootCounter("v2") });
      await waitForBody(first.url, "v1,v2,");
    } finally {
      await first.agent.stop();
    }
    const dataDir = await stat(path.join(first.runtimeRoot, "data"));
    expect(dataDir.uid).not.toBe(0);
    expect(dataDir.mode & 0o777).toBe(0o700);
    const second = await startAgent(app, first.runtimeRoot);
    try {
      await waitForBody(second.url, "v1,v2,v2,");
    } finally {
      await second.agent.stop();
    }
  });
});
