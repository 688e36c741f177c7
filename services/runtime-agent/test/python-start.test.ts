import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, packDirectory, parseManifest, RELEASE_CHANNEL, storageKeys, type BuildManifest, type InstanceReport } from "@slipway/shared";
import { labelApp } from "../../../test/harness/apps";
import { uniqueApp } from "../../../test/harness/env";
import { eventually, withDeadline } from "../../../test/harness/local-stack";
import { buildFakePythonWheels, djangoProject } from "../../../test/harness/python-fakes";
import { extractArtifact, startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../../../test/harness/stack";
import { RuntimeAgent } from "../src/agent";
import { serverWorkersEnvironment } from "../src/python-env";
import { NO_START_COMMAND, resolveStartCommand } from "../src/start-command";

/**
 * How Python apps start: what the build detects (and the server it installs), the order the
 * runtime follows, gunicorn's settings, collectstatic, Oryx's output lookup and the reasons an
 * instance reports when an app does not serve. Offline: the frameworks and servers are the fakes
 * of test/harness/python-fakes.ts (which report the settings they serve with in X-Fake-Server);
 * the real ones are in test/e2e/real-apps.test.ts. Every app runs in a real agent, sandboxed.
 */
let stack: InProcessStack;
let work: string;
let wheels: string;
const agents: RuntimeAgent[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-python-start-"));
  wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildFakePythonWheels(wheels);
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" });
});

afterAll(async () => {
  for (const agent of agents) await agent.stop(1000, 2000).catch(() => undefined);
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

/** The exact gunicorn command the build records, written out here rather than taken from the code under test. */
const gunicorn = (rest: string) => `GUNICORN_CMD_ARGS="--timeout 600 --access-logfile '-' --error-logfile '-' $GUNICORN_CMD_ARGS" gunicorn --bind=127.0.0.1:$PORT ${rest}`;
const DEFAULT_GUNICORN = "gunicorn workers=1 timeout=600 worker-class=sync access-logfile=- error-logfile=-";

interface Deployed {
  app: string;
  build: BuildView;
  manifest: BuildManifest;
  log: string;
}

async function deploy(app: string, files: Record<string, string>): Promise<Deployed> {
  const dir = await writeTree(path.join(work, `${app}-${randomUUID().slice(0, 8)}`), files);
  const build = await waitForBuild(stack.baseUrl, (await withDeadline(uploadDir(stack.baseUrl, app, dir), 60_000, `uploading ${app}`)).id, 180_000);
  const log = await withDeadline(stack.api.store.getText(storageKeys.buildLog(app, build.id)), 30_000, `reading ${app}'s build log`);
  if (build.status !== "succeeded") throw new Error(`build ${build.status}: ${build.error}\n${log}`);
  const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
  return { app, build, manifest, log };
}

/** A real agent (in this process) for `app`; `instance()` is its latest report. */
async function serve(app: string, extra: Record<string, string> = {}) {
  const port = await freePort();
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `${app}-runtime-${port}`), HEALTH_TIMEOUT_S: "30", ...extra });
  const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
  agents.push(agent);
  await withDeadline(agent.start(), 120_000, `the agent of ${app} starting`);
  const instance = async () => (await stack.api.instances.list(app)).find((i) => i.instanceId === "i-1");
  return { agent, url: `http://127.0.0.1:${port}`, instance };
}

/** The first 200 from `url`: its body and the fake server's settings. */
async function answer(url: string, what: string, timeoutMs = 60_000): Promise<{ body: string; server: string }> {
  return eventually(async () => {
    const response = await fetch(url).catch(() => undefined);
    return response?.status === 200 ? { body: await response.text(), server: response.headers.get("x-fake-server") ?? "" } : undefined;
  }, timeoutMs, what);
}

/** What the runtime chose for the release it serves: resolved again from the restored files (the host cache's tree, under an overlay). */
async function chosenCommand(instance: () => Promise<InstanceReport | undefined>, manifest: BuildManifest, startupCommand?: string): Promise<string | undefined> {
  const report = await instance();
  const marker = JSON.parse(await readFile(path.join(report!.appPath!, ".slipway", "restored.json"), "utf8")) as { lower?: string };
  return resolveStartCommand(marker.lower ?? report!.appPath!, manifest, startupCommand);
}

async function serving(deployed: Deployed, expected: { command: string; body: string; server: string | RegExp }, extra: Record<string, string> = {}) {
  const { agent, url, instance } = await serve(deployed.app, extra);
  const got = await answer(url, `${deployed.app} to answer`);
  expect(got.body).toBe(expected.body);
  if (typeof expected.server === "string") expect(got.server).toBe(expected.server);
  else expect(got.server).toMatch(expected.server);
  expect(await chosenCommand(instance, deployed.manifest)).toBe(expected.command);
  return { agent, url, instance };
}

const flaskApp = (body: string, variable = "app") => [`from flask import Flask`, `${variable} = Flask(__name__)`, "", `@${variable}.get("/")`, "def index():", `    return ${JSON.stringify(body)}`, ""].join("\n");

describe("detection: what the build records and the runtime serves", () => {
  it("Flask in app.py, gunicorn in the requirements: gunicorn app:app, nothing installed", async () => {
    const deployed = await deploy(uniqueApp("flask-app"), { "app.py": flaskApp("hello from app.py"), "requirements.txt": "flask\ngunicorn\n" });
    const command = gunicorn("app:app");
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.log).toContain("Detected a Flask app (WSGI): app:app in app.py");
    expect(deployed.log).not.toContain("installing it into antenv");
    await serving(deployed, { command, body: "hello from app.py", server: DEFAULT_GUNICORN });
  });

  it("a Flask application factory, as Flask's tutorial lays it out (flaskr/__init__.py): gunicorn 'flaskr:create_app()'", async () => {
    const factory = ["from flask import Flask", "", "def create_app():", "    app = Flask(__name__)", "", '    @app.get("/")', "    def index():", '        return "hello from a factory"', "", "    return app", ""].join("\n");
    const deployed = await deploy(uniqueApp("flask-factory"), { "flaskr/__init__.py": factory, "requirements.txt": "flask\ngunicorn\n" });
    const command = gunicorn("'flaskr:create_app()'");
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.log).toContain("Detected a Flask app (WSGI): flaskr:create_app() in flaskr/__init__.py");
    await serving(deployed, { command, body: "hello from a factory", server: DEFAULT_GUNICORN });
  });

  it("Flask in application.py (before app.py) with its own variable name; gunicorn not in requirements.txt is installed and the log says so", async () => {
    const deployed = await deploy(uniqueApp("flask-application"), {
      "application.py": flaskApp("hello from application.py", "application"),
      "app.py": flaskApp("app.py is the later candidate"),
      "requirements.txt": "flask==3.1.*\n",
    });
    const command = gunicorn("application:application");
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.log).toContain("gunicorn is not in requirements.txt: installing it into antenv to serve the app");
    expect(existsSync(path.join(await extractArtifact(stack, deployed.build, work), "antenv/bin/gunicorn"))).toBe(true);
    await serving(deployed, { command, body: "hello from application.py", server: DEFAULT_GUNICORN });

    // The installed server is cached with the dependencies: a rebuild restores it, installs nothing.
    const rebuilt = await waitForBuild(stack.baseUrl, ((await (await fetch(`${stack.baseUrl}/v1/apps/${deployed.app}/rebuild`, { method: "POST" })).json()) as { id: string }).id, 180_000);
    expect(rebuilt.status).toBe("succeeded");
    const rebuildLog = await stack.api.store.getText(storageKeys.buildLog(deployed.app, rebuilt.id));
    expect(rebuildLog).toContain("Dependency cache hit");
    expect(rebuildLog).not.toContain("installing it into antenv");
    expect(parseManifest(await stack.api.store.getText(storageKeys.manifest(deployed.app, rebuilt.id))).startupCommand).toBe(command);
  });

  it("Django as startproject lays it out, without gunicorn in requirements.txt: gunicorn mysite.wsgi, installed; collectstatic ran", async () => {
    const deployed = await deploy(uniqueApp("django"), { ...djangoProject("mysite", { body: "hello from mysite", staticRoot: true }), "requirements.txt": "Django==5.1.*\n" });
    const command = gunicorn("mysite.wsgi");
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.manifest.frameworks).toEqual(["Django"]);
    expect(deployed.log).toContain("Detected a Django app (WSGI): mysite.wsgi:application in mysite/wsgi.py");
    expect(deployed.log).toContain("gunicorn is not in requirements.txt: installing it into antenv to serve the app");
    expect(deployed.log).toContain("1 static file copied to");
    expect(existsSync(path.join(await extractArtifact(stack, deployed.build, work), "staticfiles/fake.css"))).toBe(true);
    await serving(deployed, { command, body: "hello from mysite", server: DEFAULT_GUNICORN });
  });

  it("Django over ASGI when uvicorn is in its requirements: uvicorn mysite.asgi:application", async () => {
    const deployed = await deploy(uniqueApp("django-asgi"), { ...djangoProject("mysite", { body: "hello over asgi", staticRoot: true }), "requirements.txt": "Django==5.1.*\nuvicorn\n" });
    const command = "uvicorn mysite.asgi:application --host 127.0.0.1 --port $PORT";
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.log).not.toContain("installing it into antenv");
    const { url } = await serving(deployed, { command, body: "hello over asgi", server: "uvicorn workers=1" });
    expect((await fetch(url)).headers.get("x-django-interface")).toBe("asgi");
  });

  it("FastAPI in main.py without a server in requirements.txt: uvicorn is installed, uvicorn main:app", async () => {
    const main = ["from fastapi import FastAPI", "", "api = FastAPI()", "", '@api.get("/")', "def index():", '    return {"message": "hello from fastapi"}', ""].join("\n");
    const deployed = await deploy(uniqueApp("fastapi"), { "main.py": main, "requirements.txt": "fastapi\n" });
    const command = "uvicorn main:api --host 127.0.0.1 --port $PORT";
    expect(deployed.manifest.startupCommand).toBe(command);
    expect(deployed.log).toContain("uvicorn is not in requirements.txt: installing it into antenv to serve the app");
    await serving(deployed, { command, body: '{"message": "hello from fastapi"}', server: "uvicorn workers=1" });
  });

  it("Starlette with gunicorn and uvicorn in its requirements: gunicorn with uvicorn's worker class", async () => {
    const app = [
      "from starlette.applications import Starlette",
      "from starlette.responses import PlainTextResponse",
      "from starlette.routing import Route",
      "",
      "async def index(request):",
      '    return PlainTextResponse("hello from starlette")',
      "",
      'app = Starlette(routes=[Route("/", index)])',
      "",
    ].join("\n");
    const deployed = await deploy(uniqueApp("starlette"), { "app.py": app, "requirements.txt": "starlette\ngunicorn\nuvicorn\n" });
    const command = gunicorn("-k uvicorn.workers.UvicornWorker app:app");
    expect(deployed.manifest.startupCommand).toBe(command);
    await serving(deployed, { command, body: "hello from starlette", server: "gunicorn workers=1 timeout=600 worker-class=uvicorn.workers.UvicornWorker access-logfile=- error-logfile=-" });
  });
});

describe("the runtime's order: startupCommand, Procfile, the build's StartupCommand, detection", () => {
  it("a Procfile web: line wins over the manifest's StartupCommand, and the app's startupCommand over the Procfile", async () => {
    const app = uniqueApp("order");
    // POST_BUILD_COMMAND runs after detection: the manifest records gunicorn, the output holds a Procfile.
    await stack.api.apps.upsert(app, { buildEnv: { POST_BUILD_COMMAND: "printf 'web: python plain.py from-procfile\\n' > Procfile" }, env: { GREETING: "hi" } });
    const files = { "app.py": flaskApp("from the manifest's command"), "plain.py": labelApp("plain", { echo: true }), "requirements.txt": "flask\ngunicorn\n" };
    const first = await deploy(app, files);
    expect(first.manifest.startupCommand).toBe(gunicorn("app:app"));
    const { url, instance } = await serve(app);
    expect((await answer(url, "the Procfile's command to serve")).body).toBe("plain|hi|from-procfile");
    expect(await chosenCommand(instance, first.manifest)).toBe("python plain.py from-procfile");

    await stack.api.apps.upsert(app, { startupCommand: "python plain.py from-startup-command" });
    const second = await deploy(app, files);
    await eventually(async () => ((await fetch(url).then((r) => r.text(), () => "")) === "plain|hi|from-startup-command" ? true : undefined), 60_000, "the startupCommand to serve");
    expect((await instance())!.buildId).toBe(second.build.id);
    expect(await chosenCommand(instance, second.manifest, "python plain.py from-startup-command")).toBe("python plain.py from-startup-command");
  });
});

describe("a start command of the app's own", () => {
  it("naming gunicorn (a startupCommand, or a Procfile web: line) gets it installed when the requirements lack it, as App Service's images ship it", async () => {
    const app = uniqueApp("own-gunicorn");
    await stack.api.apps.upsert(app, { startupCommand: "gunicorn --bind=127.0.0.1:$PORT app:app" });
    const deployed = await deploy(app, { "app.py": flaskApp("served by the app's own command"), "requirements.txt": "flask\n" });
    expect(deployed.log).toContain("the app's startupCommand runs gunicorn, which the app's dependencies lack: installing it into antenv");
    const { url } = await serve(app);
    expect((await answer(url, "the startupCommand to serve")).body).toBe("served by the app's own command");

    const procfile = await deploy(uniqueApp("procfile-gunicorn"), { "app.py": flaskApp("x"), "requirements.txt": "flask\n", Procfile: "web: cd . && gunicorn --bind=127.0.0.1:$PORT app:app\n" });
    expect(procfile.log).toContain("the Procfile's web: line runs gunicorn, which the app's dependencies lack: installing it into antenv");
    expect(existsSync(path.join(await extractArtifact(stack, procfile.build, work), "antenv/bin/gunicorn"))).toBe(true);
    const named = await deploy(uniqueApp("has-gunicorn"), { "app.py": flaskApp("x"), "requirements.txt": "flask\ngunicorn\n", Procfile: "web: gunicorn app:app\n" });
    expect(named.log).not.toContain("which the app's dependencies lack");
  });
});

describe("gunicorn as App Service runs it", () => {
  it("workers from PYTHON_GUNICORN_CUSTOM_WORKER_NUM or PYTHON_ENABLE_GUNICORN_MULTIWORKERS, threads from PYTHON_GUNICORN_CUSTOM_THREAD_NUM; GUNICORN_CMD_ARGS from the app's env wins over the defaults", async () => {
    const app = uniqueApp("gunicorn-settings");
    const deployed = await deploy(app, { "app.py": flaskApp("settings"), "requirements.txt": "flask\ngunicorn\n" });

    await stack.api.apps.upsert(app, { env: { PYTHON_GUNICORN_CUSTOM_WORKER_NUM: "3", GUNICORN_CMD_ARGS: "--timeout 42 --error-logfile /dev/stderr" } });
    const first = await serve(app);
    expect((await answer(first.url, "custom workers")).server).toBe("gunicorn workers=3 timeout=42 worker-class=sync access-logfile=- error-logfile=/dev/stderr");
    await first.agent.stop();

    await stack.api.apps.upsert(app, { env: { PYTHON_ENABLE_GUNICORN_MULTIWORKERS: "true", PYTHON_GUNICORN_CUSTOM_THREAD_NUM: "4" } });
    const second = await serve(app);
    expect((await answer(second.url, "2 × cores + 1 workers")).server).toBe(`gunicorn workers=${2 * os.availableParallelism() + 1} timeout=600 worker-class=sync access-logfile=- error-logfile=- threads=4`);
    expect(await chosenCommand(second.instance, deployed.manifest)).toBe(gunicorn("app:app"));
  });

  it("the workers and threads settings yield to the app's own WEB_CONCURRENCY and --threads, and ignore what is not a count", () => {
    expect(serverWorkersEnvironment({ PYTHON_GUNICORN_CUSTOM_WORKER_NUM: "4", PYTHON_ENABLE_GUNICORN_MULTIWORKERS: "true" }, 2)).toEqual({ WEB_CONCURRENCY: "4" });
    expect(serverWorkersEnvironment({ PYTHON_ENABLE_GUNICORN_MULTIWORKERS: "TRUE" }, 2)).toEqual({ WEB_CONCURRENCY: "5" });
    expect(serverWorkersEnvironment({ PYTHON_ENABLE_GUNICORN_MULTIWORKERS: "true", WEB_CONCURRENCY: "2" }, 8)).toEqual({});
    expect(serverWorkersEnvironment({ PYTHON_GUNICORN_CUSTOM_WORKER_NUM: "lots" }, 2)).toEqual({});
    expect(serverWorkersEnvironment({}, 2)).toEqual({});
    expect(serverWorkersEnvironment({ PYTHON_GUNICORN_CUSTOM_THREAD_NUM: "8", GUNICORN_CMD_ARGS: "--timeout 42" }, 2)).toEqual({ GUNICORN_CMD_ARGS: "--threads=8 --timeout 42" });
    expect(serverWorkersEnvironment({ PYTHON_GUNICORN_CUSTOM_THREAD_NUM: "8", GUNICORN_CMD_ARGS: "--threads 2" }, 2)).toEqual({});
    expect(serverWorkersEnvironment({ PYTHON_GUNICORN_CUSTOM_THREAD_NUM: "many" }, 2)).toEqual({});
  });
});

describe("collectstatic", () => {
  it("a failing collectstatic is a warning with its output in the log; the build goes on and the app serves", async () => {
    // As startproject writes the settings: no STATIC_ROOT.
    const deployed = await deploy(uniqueApp("collectstatic"), { ...djangoProject("mysite", { body: "served anyway" }), "requirements.txt": "Django==5.1.*\ngunicorn\n" });
    expect(deployed.log).toContain("Running python manage.py collectstatic --noinput ...");
    expect(deployed.log).toContain("ImproperlyConfigured: You're using the staticfiles app without having set the STATIC_ROOT setting");
    expect(deployed.log).toMatch(/Warning: manage\.py collectstatic failed \(exit code 1\); the build continues without collected static files/);
    expect(deployed.manifest.startupCommand).toBe(gunicorn("mysite.wsgi"));
    await serving(deployed, { command: gunicorn("mysite.wsgi"), body: "served anyway", server: DEFAULT_GUNICORN });
  });
});

describe("Oryx's own artifacts", () => {
  it("without OutputFileName the runtime takes output.tar.zst before output.tar.gz, and detects the start command itself", async () => {
    const app = uniqueApp("oryx-zst");
    const buildId = `oryx${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    const buildDir = path.join(work, "oryx-build", buildId);
    const packed: Record<string, string> = {};
    for (const [variant, compression] of [["zst", "zstd"], ["gz", "gzip"]] as const) {
      await rm(buildDir, { recursive: true, force: true });
      await writeTree(buildDir, { "app.py": flaskApp(`from output.tar.${variant}`) });
      execFileSync("python3", ["-m", "venv", path.join(buildDir, "antenv")]);
      execFileSync(path.join(buildDir, "antenv/bin/pip"), ["install", "-q", "--no-index", "--find-links", wheels, "flask", "gunicorn"]);
      const file = path.join(work, `${buildId}.tar.${variant}`);
      await packDirectory(buildDir, file, compression);
      packed[variant] = file;
    }
    // Oryx's keys only: no OutputFileName, no StartupCommand.
    const manifest = ['PythonVersion="3.11.7"', 'virtualEnvName="antenv"', `OperationId="${buildId}"`, `SourceDirectoryInBuildContainer="${buildDir}"`, 'PlatformName="python"', 'CompressDestinationDir="true"', ""].join("\n");
    await stack.api.store.putBuffer(storageKeys.manifest(app, buildId), manifest);
    await stack.api.store.putBuffer(storageKeys.artifact(app, buildId, "output.tar.zst"), await readFile(packed.zst!));
    await stack.api.store.putBuffer(storageKeys.artifact(app, buildId, "output.tar.gz"), await readFile(packed.gz!));
    await rm(buildDir, { recursive: true, force: true });
    const { release } = (await stack.api.releases.create(app, buildId, "manual"))!;
    await stack.api.redis.publish(RELEASE_CHANNEL, JSON.stringify({ app, version: release.version, buildId }));

    const { url, instance } = await serve(app);
    const got = await answer(url, "the Oryx build to serve");
    expect(got).toEqual({ body: "from output.tar.zst", server: DEFAULT_GUNICORN });
    expect(await chosenCommand(instance, parseManifest(manifest))).toBe(gunicorn("app:app"));
  });
});

describe("reasons an instance reports when the app does not serve", () => {
  async function failedReport(app: string, extra: Record<string, string> = {}): Promise<InstanceReport> {
    const { instance } = await serve(app, extra);
    return eventually(async () => {
      const report = await instance();
      return report?.state === "failed" ? report : undefined;
    }, 60_000, `${app} reported failed`);
  }

  it("an app that never listens on $PORT: the port, the wait, the port it announced instead, what it printed, on one line", async () => {
    const app = uniqueApp("no-listen");
    await deploy(app, { "app.py": "import time\nprint(' * Running on http://127.0.0.1:5000', flush=True)\nprint('Press CTRL+C to quit', flush=True)\ntime.sleep(600)\n" });
    const report = await failedReport(app, { HEALTH_TIMEOUT_S: "3" });
    expect(report.error).toMatch(
      /^the app did not listen on \$PORT \(\d+\) within 3 s \(it seems to listen on 5000 instead: bind to \$PORT\); it printed: \* Running on http:\/\/127\.0\.0\.1:5000 \| Press CTRL\+C to quit$/,
    );
  });

  it("an app that exits at once: its exit and the last lines it printed, on one line", async () => {
    const app = uniqueApp("exits");
    await deploy(app, { "app.py": "import sys\nprint('Traceback (most recent call last):', flush=True)\nsys.exit(\"ModuleNotFoundError: No module named 'flask'\")\n" });
    const report = await failedReport(app);
    expect(report.error).toMatch(/^the app exited \(code 1\) before answering on \$PORT \(\d+\); it printed: Traceback \(most recent call last\): \| ModuleNotFoundError: No module named 'flask'$/);
  });

  it("nothing says how to start: no start command found", async () => {
    const app = uniqueApp("no-start");
    const deployed = await deploy(app, { "worker.py": "print('a job, not a web app')\n", "requirements.txt": "" });
    expect(deployed.manifest.startupCommand).toBeUndefined();
    expect(deployed.log).toContain("No start command detected: add a Procfile web: line or set the app's startupCommand");
    const report = await failedReport(app);
    expect(report.error).toBe(NO_START_COMMAND);
    expect(report.error).toBe("no start command found: add a Procfile `web:` line or set startupCommand");
  });
});
