import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { extractArtifact, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../../../test/harness/stack";
import { buildWheel } from "../../../test/harness/wheels";

let stack: InProcessStack;
let work: string;
let wheels: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-platforms-"));
  wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "hi" });
  // The worker process holds secrets a build must never see.
  process.env.API_TOKEN = "worker-api-token-secret";
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels });
});

afterAll(async () => {
  delete process.env.API_TOKEN;
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

async function buildApp(files: Record<string, string>, options: { app?: string; buildEnv?: Record<string, string>; timeoutMs?: number } = {}) {
  const app = options.app ?? uniqueApp();
  if (options.buildEnv) await stack.api.apps.upsert(app, { buildEnv: options.buildEnv });
  const dir = await writeTree(path.join(work, `${app}-${Date.now()}`), files);
  const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, options.timeoutMs ?? 120_000);
  const manifest = build.status === "succeeded" ? parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id))) : undefined;
  return { app, build, manifest };
}

describe("Python platform", () => {
  it("fails at once when the requested version is not available, naming what the worker has", async () => {
    const { build } = await buildApp({ "app.py": "", "runtime.txt": "python-3.4\n" });
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^Python 3\.4 was requested \(runtime\.txt\) but this worker has 3\.\d+\.\d+/);
    // Unrecoverable: one attempt only, however long we wait for a retry.
    await new Promise((r) => setTimeout(r, 2500));
    const log = await stack.api.store.getText(storageKeys.buildLog(build.app, build.id));
    expect(log.match(/^Build .* of app /gm)).toHaveLength(1);
  });

  it("takes PYTHON_VERSION from the app's buildEnv over runtime.txt", async () => {
    const major = execFileSync("python3", ["-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"], { encoding: "utf8" }).trim();
    const { build, manifest } = await buildApp({ "app.py": "", "runtime.txt": "python-3.4\n" }, { buildEnv: { PYTHON_VERSION: major } });
    expect(build.status).toBe("succeeded");
    expect(manifest!.pythonVersion!.startsWith(`${major}.`)).toBe(true);
  });

  it("runs PRE/POST_BUILD_COMMAND with SOURCE_DIR and DESTINATION_DIR; buildEnv overrides build.env; no secret reaches the build", async () => {
    const { build, manifest } = await buildApp(
      {
        "app.py": "",
        "requirements.txt": "hello-tool==1.0\n",
        "build.env": [
          'PRE_BUILD_COMMAND="echo pre $SOURCE_DIR > pre.txt"',
          "POST_BUILD_COMMAND=env | sort > $DESTINATION_DIR/build-env.txt; test -x antenv/bin/hello-tool && echo post-saw-venv > post.txt",
          "GREETING=from-build-env",
          "ONLY_IN_FILE=yes",
        ].join("\n"),
      },
      { buildEnv: { GREETING: "from-app" } },
    );
    expect(build.error).toBeUndefined();
    const out = await extractArtifact(stack, build, work);
    const sourceDir = manifest!.sourceDirectoryInBuildContainer!;
    expect(await readFile(path.join(out, "pre.txt"), "utf8")).toBe(`pre ${sourceDir}\n`);
    expect(await readFile(path.join(out, "post.txt"), "utf8")).toBe("post-saw-venv\n");
    const env = await readFile(path.join(out, "build-env.txt"), "utf8");
    expect(env).toContain("GREETING=from-app\n");
    expect(env).toContain("ONLY_IN_FILE=yes\n");
    expect(env).toContain(`DESTINATION_DIR=${sourceDir}\n`);
    expect(env).toContain(`PIP_FIND_LINKS=${wheels}\n`);
    for (const secret of ["S3_SECRET_KEY", "S3_ACCESS_KEY", "REDIS_URL", "API_TOKEN", stack.env.S3_SECRET_KEY!, "worker-api-token-secret"]) {
      expect(env).not.toContain(secret);
    }
  });

  it("installs a Django app from the package index and runs collectstatic, unless DISABLE_COLLECTSTATIC=true", async () => {
    const django = {
      "requirements.txt": "Django==5.1.*\n",
      "manage.py": [
        "import os, sys",
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site_settings')",
        "from django.core.management import execute_from_command_line",
        "execute_from_command_line(sys.argv)",
      ].join("\n"),
      "site_settings.py": [
        "SECRET_KEY = 'test'",
        "INSTALLED_APPS = ['django.contrib.admin', 'django.contrib.auth', 'django.contrib.contenttypes', 'django.contrib.staticfiles']",
        "STATIC_URL = '/static/'",
        "STATIC_ROOT = 'staticfiles'",
        "ROOT_URLCONF = 'site_urls'",
      ].join("\n"),
      "site_urls.py": "urlpatterns = []\n",
    };
    const withStatic = await buildApp(django, { timeoutMs: 240_000 });
    expect(withStatic.build.error).toBeUndefined();
    expect(withStatic.manifest!.frameworks).toEqual(["Django"]);
    const out = await extractArtifact(stack, withStatic.build, work);
    expect(existsSync(path.join(out, "staticfiles/admin/css/base.css"))).toBe(true);

    const without = await buildApp(django, { buildEnv: { DISABLE_COLLECTSTATIC: "true" }, timeoutMs: 240_000 });
    expect(without.build.status).toBe("succeeded");
    expect(existsSync(path.join(await extractArtifact(stack, without.build, work), "staticfiles"))).toBe(false);
  }, 300_000);

  it("runs pip install . for a setup.py project without requirements.txt", async () => {
    const { build } = await buildApp(
      {
        "setup.py": "from setuptools import setup\nsetup(name='mysite', version='0.1', py_modules=['mysite'], entry_points={'console_scripts': ['mysite=mysite:main']})\n",
        "mysite.py": "def main():\n    print('mysite ok')\n",
      },
      { timeoutMs: 240_000 },
    );
    expect(build.error).toBeUndefined();
    const out = await extractArtifact(stack, build, work);
    expect(existsSync(path.join(out, "antenv/bin/mysite"))).toBe(true);
    const log = await stack.api.store.getText(storageKeys.buildLog(build.app, build.id));
    expect(log).toContain("running pip install .");
  }, 300_000);
});

describe("Node platform", () => {
  /** A tiny package of the test's own, packed with npm, so installs need no registry. */
  // Vendored in the app's own tree: a build sees nothing of the host beyond its source.
  const vendoredPackage = {
    "vendor/tiny-greeter/package.json": JSON.stringify({ name: "tiny-greeter", version: "1.0.0", main: "index.js" }),
    "vendor/tiny-greeter/index.js": "module.exports = (name) => `hello ${name}`;\n",
  };

  it("installs with npm install (no lockfile) or npm ci (lockfile), runs the build script, and detects the version", async () => {
    const files = {
      ...vendoredPackage,
      "package.json": JSON.stringify({
        name: "node-app",
        version: "1.0.0",
        engines: { node: ">=18" },
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        scripts: { build: "node -e \"require('fs').writeFileSync('built.txt', require('tiny-greeter')('build'))\"", start: "node server.js" },
      }),
      "server.js": "console.log('server')\n",
    };
    const noLock = await buildApp(files);
    expect(noLock.build.error).toBeUndefined();
    expect(noLock.manifest).toMatchObject({ platformName: "nodejs", nodeVersion: process.version.slice(1), startupCommand: "npm start" });
    const out = await extractArtifact(stack, noLock.build, work);
    expect(await readFile(path.join(out, "built.txt"), "utf8")).toBe("hello build");
    expect(existsSync(path.join(out, "node_modules/tiny-greeter/index.js"))).toBe(true);
    expect(await stack.api.store.getText(storageKeys.buildLog(noLock.app, noLock.build.id))).toContain("No lockfile: running npm install");

    const withLockDir = await writeTree(path.join(work, "locked"), files);
    execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: withLockDir });
    const lock = await readFile(path.join(withLockDir, "package-lock.json"), "utf8");
    const locked = await buildApp({ ...files, "package-lock.json": lock });
    expect(locked.build.error).toBeUndefined();
    expect(await stack.api.store.getText(storageKeys.buildLog(locked.app, locked.build.id))).toContain("Running npm ci");
  });

  it("fails when engines.node cannot be met, naming the installed version", async () => {
    const { build } = await buildApp({ "package.json": JSON.stringify({ name: "x", version: "1.0.0", engines: { node: ">=99" } }) });
    expect(build.status).toBe("failed");
    expect(build.error).toBe(`Node >=99 was requested (package.json engines.node) but this worker has ${process.version.slice(1)}`);
  });

  it("installs a real Express app from the npm registry with npm ci", async () => {
    const files = {
      "package.json": JSON.stringify({ name: "express-app", version: "1.0.0", dependencies: { express: "^4.21.0" }, scripts: { start: "node app.js" } }),
      "app.js": "const app = require('express')(); app.get('/', (q, s) => s.send('ok')); app.listen(process.env.PORT);\n",
    };
    const dir = await writeTree(path.join(work, "express-lock"), files);
    execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: dir });
    const { build, manifest } = await buildApp({ ...files, "package-lock.json": await readFile(path.join(dir, "package-lock.json"), "utf8") }, { timeoutMs: 240_000 });
    expect(build.error).toBeUndefined();
    expect(manifest!.frameworks).toEqual(["Express"]);
    expect(existsSync(path.join(await extractArtifact(stack, build, work), "node_modules/express/package.json"))).toBe(true);
  }, 300_000);
});
