import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { writeTree } from "../harness/stack";
import { useStack } from "../harness/use-stack";

/**
 * Real apps with real dependencies from the package indexes, built and served sandboxed (the
 * default), as users deploy them: a Django project as startproject makes it and a FastAPI app,
 * neither naming its server (the build installs gunicorn, uvicorn), and an Express app by npm start.
 */
const { stack, work, deploy, serve } = useStack("real-apps");

async function deployAndServe(app: string, dir: string, agentEnv: Record<string, string> = {}) {
  const { build } = await deploy(app, dir, 300_000);
  expect(build.error).toBeUndefined();
  expect(build.status).toBe("succeeded");
  const { url, agent } = await serve(app, agentEnv);
  return { url, build, agent };
}

/** Processes running `<appPath>/antenv/bin/gunicorn`: gunicorn's master and its workers (forks with the same command line). */
function gunicornProcesses(appPath: string): number {
  const script = path.join(appPath, "antenv/bin/gunicorn");
  let count = 0;
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(script)) count += 1;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

describe("real apps build and serve inside the sandbox", () => {
  it("a Django project as django-admin startproject makes it, without gunicorn in its requirements: the build installs gunicorn, which serves it with App Service's settings", async () => {
    const app = uniqueApp("django");
    // The project comes from the real django-admin, run from a venv of the test's own.
    const tools = path.join(work, "django-tools");
    execFileSync("python3", ["-m", "venv", tools]);
    execFileSync(path.join(tools, "bin/pip"), ["install", "-q", "--disable-pip-version-check", "Django==5.1.*"]);
    const dir = await writeTree(path.join(work, app), { "requirements.txt": "Django==5.1.*\n" });
    execFileSync(path.join(tools, "bin/django-admin"), ["startproject", "mysite", dir]);
    // Three workers, and an access log format of the app's own through GUNICORN_CMD_ARGS.
    await stack.api.apps.upsert(app, { env: { PYTHON_GUNICORN_CUSTOM_WORKER_NUM: "3", GUNICORN_CMD_ARGS: "--access-logformat 'slipway-access %(s)s %(U)s'" } });

    const { url, build } = await deployAndServe(app, dir);
    const log = await stack.api.store.getText(storageKeys.buildLog(app, build.id));
    expect(log).toContain("Detected a Django app (WSGI): mysite.wsgi:application in mysite/wsgi.py");
    expect(log).toContain("gunicorn is not in requirements.txt: installing it into antenv to serve the app");
    // startproject's settings have no STATIC_ROOT: collectstatic fails, as a warning.
    expect(log).toContain("STATIC_ROOT");
    expect(log).toMatch(/Warning: manage\.py collectstatic failed \(exit code 1\); the build continues/);
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
    expect(manifest.startupCommand).toBe(`GUNICORN_CMD_ARGS="--timeout 600 --access-logfile '-' --error-logfile '-' $GUNICORN_CMD_ARGS" gunicorn --bind=127.0.0.1:$PORT mysite.wsgi`);

    const answer = await eventually(async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? { server: response.headers.get("server"), body: await response.text() } : undefined;
    }, 120_000, "the Django app to answer");
    expect(answer.server).toMatch(/gunicorn/i);
    expect(answer.body).toContain("The install worked successfully!");
    // The access log goes to stdout in the app's format, and so to the app log; gunicorn runs a master and three workers.
    await eventually(
      async () => ((await (await fetch(`${stack.baseUrl}/v1/apps/${app}/logs`)).text()).match(/^\S+ i-1 stdout: slipway-access 200 \/$/m) ? true : undefined),
      30_000,
      "gunicorn's access log line in the app log",
    );
    const appPath = (await stack.api.instances.list(app)).find((i) => i.instanceId === "i-1")!.appPath!;
    await eventually(async () => (gunicornProcesses(appPath) === 4 ? true : undefined), 30_000, `a gunicorn master and 3 workers (saw ${gunicornProcesses(appPath)})`);
  }, 400_000);

  it("a FastAPI app without a server in its requirements: the build installs uvicorn, which serves it", async () => {
    const app = uniqueApp("fastapi");
    const dir = await writeTree(path.join(work, app), {
      "requirements.txt": "fastapi>=0.110\n",
      "main.py": [
        "import os",
        "from fastapi import FastAPI",
        "",
        "app = FastAPI()",
        "",
        "@app.get('/')",
        "def index():",
        "    return {'message': 'hello from fastapi', 'uid': os.getuid()}",
        "",
      ].join("\n"),
    });
    const { url, build } = await deployAndServe(app, dir);
    const log = await stack.api.store.getText(storageKeys.buildLog(app, build.id));
    expect(log).toContain("uvicorn is not in requirements.txt: installing it into antenv to serve the app");
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
    expect(manifest.startupCommand).toBe("uvicorn main:app --host 127.0.0.1 --port $PORT");
    const answer = await eventually(async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? { server: response.headers.get("server"), body: (await response.json()) as { message: string; uid: number } } : undefined;
    }, 120_000, "the FastAPI app to answer");
    expect(answer.server).toBe("uvicorn");
    expect(answer.body.message).toBe("hello from fastapi");
    expect(answer.body.uid).not.toBe(0);
  }, 400_000);

  it("an Express app from the npm registry, installed with npm ci and started with npm start", async () => {
    const app = uniqueApp("express");
    const files = {
      "package.json": JSON.stringify({ name: "express-e2e", version: "1.0.0", dependencies: { express: "^4.21.0" }, scripts: { start: "node app.js" } }),
      "app.js": "const app = require('express')(); app.get('/', (q, s) => s.json({ message: 'hello from express', uid: process.getuid() })); app.listen(process.env.PORT, '127.0.0.1');\n",
    };
    const lockDir = await writeTree(path.join(work, `${app}-lock`), files);
    execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: lockDir });
    const dir = await writeTree(path.join(work, app), { ...files, "package-lock.json": await readFile(path.join(lockDir, "package-lock.json"), "utf8") });
    const { url } = await deployAndServe(app, dir);
    const answer = await eventually(async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? ((await response.json()) as { message: string; uid: number }) : undefined;
    }, 120_000, "the Express app to answer");
    expect(answer.message).toBe("hello from express");
    expect(answer.uid).not.toBe(0);
  }, 400_000);
});
