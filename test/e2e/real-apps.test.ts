import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { spawnAgent, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";

/**
 * Real apps with real dependencies from the package indexes, built and served sandboxed (the
 * default), as users deploy them: a Django project served by gunicorn, an Express app by npm start.
 */
let stack: InProcessStack;
let work: string;
const agents: ReturnType<typeof spawnAgent>[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-real-apps-"));
  stack = await startInProcessStack();
});

afterAll(async () => {
  for (const agent of agents) agent.child.kill("SIGTERM");
  await Promise.all(agents.map((agent) => agent.exited));
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

async function deployAndServe(app: string, dir: string): Promise<string> {
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, 300_000);
  expect(build.error).toBeUndefined();
  expect(build.status).toBe("succeeded");
  const port = await freePort();
  agents.push(spawnAgent(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `runtime-${app}`), HEALTH_TIMEOUT_S: "60" }));
  return `http://127.0.0.1:${port}`;
}

describe("real apps build and serve inside the sandbox", () => {
  it("a Django project from the package index, served by gunicorn", async () => {
    const app = uniqueApp("django");
    const dir = await writeTree(path.join(work, app), {
      "requirements.txt": "Django==5.1.*\ngunicorn==23.*\n",
      "manage.py": [
        "import os, sys",
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')",
        "from django.core.management import execute_from_command_line",
        "execute_from_command_line(sys.argv)",
      ].join("\n"),
      "settings.py": [
        "from pathlib import Path",
        "BASE_DIR = Path(__file__).resolve().parent",
        "SECRET_KEY = 'e2e-only'",
        "DEBUG = False",
        "ALLOWED_HOSTS = ['*']",
        "ROOT_URLCONF = 'urls'",
        "INSTALLED_APPS = ['django.contrib.staticfiles']",
        "STATIC_URL = '/static/'",
        "STATIC_ROOT = BASE_DIR / 'staticfiles'",
      ].join("\n"),
      "urls.py": [
        "import os",
        "from django.http import JsonResponse",
        "from django.urls import path",
        "urlpatterns = [path('', lambda request: JsonResponse({'message': 'hello from django', 'uid': os.getuid()}))]",
      ].join("\n"),
      "wsgi.py": [
        "import os",
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')",
        "from django.core.wsgi import get_wsgi_application",
        "application = get_wsgi_application()",
      ].join("\n"),
    });
    const url = await deployAndServe(app, dir);
    const answer = await eventually(async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? { server: response.headers.get("server"), body: (await response.json()) as { message: string; uid: number } } : undefined;
    }, 120_000, "the Django app to answer");
    expect(answer.server).toMatch(/gunicorn/i);
    expect(answer.body.message).toBe("hello from django");
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
    const url = await deployAndServe(app, dir);
    const answer = await eventually(async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok ? ((await response.json()) as { message: string; uid: number }) : undefined;
    }, 120_000, "the Express app to answer");
    expect(answer.message).toBe("hello from express");
    expect(answer.uid).not.toBe(0);
  }, 400_000);
});
