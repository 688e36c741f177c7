import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, parseManifest, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { extractArtifact, uploadDir, waitForBuild, writeTree } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";
import { buildWheel } from "../../../test/harness/wheels";

const { stack, work, spawnAgent } = useStack("platforms", {
  env: async () => {
    await mkdir(wheels);
    buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "hi" });
    // The worker process holds secrets a build must never see.
    process.env.API_TOKEN = "worker-api-token-secret";
    return { PIP_FIND_LINKS: wheels };
  },
});
const wheels = path.join(work, "wheels");

afterAll(() => {
  delete process.env.API_TOKEN;
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
    // Unrecoverable: one attempt only. A retryable failure would leave the job delayed for its
    // next attempt; failed (a final state) after one attempt means no retry is coming.
    // The job is read again once failed: a copy read while it was still active has attemptsMade 0.
    const job = await eventually(async () => {
      const found = await stack.api.buildQueue.getJob(build.id);
      return found && (await found.getState()) === "failed" ? await stack.api.buildQueue.getJob(build.id) : undefined;
    }, 30_000, "the build's job to be in the failed set");
    expect(job.attemptsMade).toBe(1);
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

  it("follows a requirements.txt link that stays inside the app, and refuses one that leaves it, saying why", async () => {
    const linked = async (target: string) => {
      const app = uniqueApp("reqlink");
      const dir = await writeTree(path.join(work, `${app}-${Date.now()}`), { "app.py": "", "requirements/prod.txt": "hello-tool==1.0\n" });
      await symlink(target, path.join(dir, "requirements.txt"));
      const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
      return build;
    };
    const inside = await linked("requirements/prod.txt");
    expect(inside.error).toBeUndefined();
    expect(existsSync(path.join(await extractArtifact(stack, inside, work), "antenv", "bin", "hello-tool"))).toBe(true);
    // An archive's own links cannot leave it (the upload is refused); a build hook's can.
    const outside = await buildApp({ "app.py": "", "requirements.txt": "" }, { buildEnv: { PRE_BUILD_COMMAND: "ln -sf /etc/hostname requirements.txt" } });
    expect(outside.build.status).toBe("failed");
    expect(outside.build.error).toBe("requirements.txt is a link to /etc/hostname, outside the app: only files inside it are read; copy the file into the app");
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
  /** Answers `<greeting>|<node version>|<uid>` on every path, greeting with the vendored package. */
  const greeterServer =
    "require('http').createServer((q, s) => s.end(`${require('tiny-greeter')('app')}|${process.version}|${process.getuid()}`)).listen(process.env.PORT, '127.0.0.1');\n";
  const buildLog = (result: { app: string; build: { id: string } }) => stack.api.store.getText(storageKeys.buildLog(result.app, result.build.id));
  /** Fails with the end of the build's log when the build failed. */
  async function succeeded<T extends { app: string; build: { id: string; error?: string } }>(result: T): Promise<T> {
    if (result.build.error !== undefined) throw new Error(`build failed: ${result.build.error}\n${(await buildLog(result)).slice(-3000)}`);
    return result;
  }

  /** Runs the build's release on a runtime agent (a real process, sandboxed) and answers its first reply. */
  async function serve(app: string, runtimeTag: string): Promise<string> {
    const port = await freePort();
    const agent = spawnAgent({ APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `runtime-${app}-${runtimeTag}`), HEALTH_TIMEOUT_S: "60", LOG_LEVEL: "debug" });
    return eventually(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      return response?.ok ? response.text() : undefined;
    }, 120_000, `${app} to answer`).catch((error: Error) => {
      throw new Error(`${error.message}\nagent output:\n${agent.output().slice(-4000)}`);
    });
  }

  it("installs with npm install (no lockfile) or npm ci (lockfile), runs build then build:azure, and detects the version", async () => {
    const files = {
      ...vendoredPackage,
      "package.json": JSON.stringify({
        name: "node-app",
        version: "1.0.0",
        engines: { node: ">=18" },
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        scripts: {
          build: "node -e \"require('fs').writeFileSync('built.txt', require('tiny-greeter')('build'))\"",
          "build:azure": "node -e \"require('fs').appendFileSync('built.txt', ' then azure')\"",
          start: "node server.js",
        },
      }),
      "server.js": "console.log('server')\n",
    };
    const noLock = await buildApp(files);
    expect(noLock.build.error).toBeUndefined();
    expect(noLock.manifest).toMatchObject({ platformName: "nodejs", nodeVersion: process.version.slice(1), startupCommand: "npm start" });
    // The worker's Node satisfies engines.node: nothing from the tool cache, nothing shipped.
    expect(noLock.manifest!.nodeBinDir).toBeUndefined();
    const out = await extractArtifact(stack, noLock.build, work);
    expect(await readFile(path.join(out, "built.txt"), "utf8")).toBe("hello build then azure");
    expect(existsSync(path.join(out, "node_modules/tiny-greeter/index.js"))).toBe(true);
    expect(existsSync(path.join(out, ".slipway"))).toBe(false);
    const log = await buildLog(noLock);
    expect(log).toContain("Package manager: npm (no lock file)");
    expect(log).toContain("No lockfile: running npm install");
    expect(log.indexOf("Running npm run build ...")).toBeLessThan(log.indexOf("Running npm run build:azure ..."));
    expect(log).toContain("Start command: npm start");
    expect(log).not.toContain("tool cache");

    const withLockDir = await writeTree(path.join(work, "locked"), files);
    execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: withLockDir });
    const lock = await readFile(path.join(withLockDir, "package-lock.json"), "utf8");
    const locked = await buildApp({ ...files, "package-lock.json": lock });
    expect(locked.build.error).toBeUndefined();
    expect(await buildLog(locked)).toContain("Running npm ci --include=dev");
  });

  it("fails when no Node release matches engines.node, naming the installed version", async () => {
    const { build } = await buildApp({ "package.json": JSON.stringify({ name: "x", version: "1.0.0", engines: { node: ">=99" } }) });
    expect(build.status).toBe("failed");
    expect(build.error).toBe(
      `Node >=99 was requested (package.json engines.node) but this worker has ${process.version.slice(1)} and the npm registry has no matching node-linux-${process.arch} release`,
    );
  });

  it("chooses the start command: Procfile web:, start script, main, then bin/www, server.js, app.js, index.js", async () => {
    const pkg = (extra: object = {}) => JSON.stringify({ name: "start-order", version: "1.0.0", ...extra });
    const cases: [files: Record<string, string>, expected: string | undefined][] = [
      [{ "package.json": pkg({ scripts: { start: "node server.js" } }), Procfile: "web: node web.js\n", "server.js": "" }, undefined],
      [{ "package.json": pkg({ main: "lib/main.js" }), "lib/main.js": "", "bin/www": "", "server.js": "" }, "node lib/main.js"],
      [{ "package.json": pkg({ main: "missing.js" }), "bin/www": "", "server.js": "" }, "node bin/www"],
      [{ "package.json": pkg(), "server.js": "", "app.js": "", "index.js": "" }, "node server.js"],
      [{ "package.json": pkg(), "app.js": "", "index.js": "" }, "node app.js"],
      [{ "package.json": pkg(), "index.js": "" }, "node index.js"],
      [{ "package.json": pkg({ main: "my server.js" }), "my server.js": "" }, "node 'my server.js'"],
    ];
    for (const [files, expected] of cases) {
      const result = await buildApp(files);
      expect(result.build.error).toBeUndefined();
      expect(result.manifest!.startupCommand).toBe(expected);
      if (!expected) expect(await buildLog(result)).toContain("Start command: the Procfile's web: node web.js");
    }
  }, 180_000);

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

  it("PRUNE_DEV_DEPENDENCIES=true removes devDependencies after the build that used them", async () => {
    const files = {
      ...vendoredPackage,
      "vendor/tiny-dev/package.json": JSON.stringify({ name: "tiny-dev", version: "1.0.0", main: "index.js" }),
      "vendor/tiny-dev/index.js": "module.exports = 'dev-only';\n",
      "package.json": JSON.stringify({
        name: "prune-app",
        version: "1.0.0",
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        devDependencies: { "tiny-dev": "file:vendor/tiny-dev" },
        scripts: { build: "node -e \"require('fs').writeFileSync('built.txt', require('tiny-dev'))\"" },
      }),
      "index.js": "",
    };
    const pruned = await buildApp(files, { buildEnv: { PRUNE_DEV_DEPENDENCIES: "true" } });
    expect(pruned.build.error).toBeUndefined();
    const out = await extractArtifact(stack, pruned.build, work);
    expect(await readFile(path.join(out, "built.txt"), "utf8")).toBe("dev-only");
    expect(existsSync(path.join(out, "node_modules/tiny-greeter"))).toBe(true);
    expect(existsSync(path.join(out, "node_modules/tiny-dev"))).toBe(false);
    expect(await buildLog(pruned)).toContain("PRUNE_DEV_DEPENDENCIES=true: removing devDependencies (npm prune --omit=dev)");

    const kept = await buildApp(files);
    expect(existsSync(path.join(await extractArtifact(stack, kept.build, work), "node_modules/tiny-dev"))).toBe(true);
  }, 180_000);

  it("yarn.lock: Yarn 1 from the registry (tool cache), --frozen-lockfile, yarn start served by an agent, node_modules cached", async () => {
    const files = {
      ...vendoredPackage,
      "package.json": JSON.stringify({ name: "node-app", version: "1.0.0", dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" }, scripts: { start: "node server.js" } }),
      "yarn.lock": '# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.\n# yarn lockfile v1\n\n\n"tiny-greeter@file:vendor/tiny-greeter":\n  version "1.0.0"\n',
      "server.js": greeterServer,
    };
    const first = await buildApp(files, { timeoutMs: 240_000 });
    expect(first.build.error).toBeUndefined();
    expect(first.manifest).toMatchObject({ startupCommand: "yarn start", nodeBinDir: ".slipway/node/bin", nodeVersion: process.version.slice(1) });
    const log = await buildLog(first);
    expect(log).toMatch(/Package manager: yarn 1\.\d+\.\d+ \(yarn\.lock\)/);
    expect(log).toContain("Running yarn install --frozen-lockfile --production=false");
    const out = await extractArtifact(stack, first.build, work);
    expect(existsSync(path.join(out, "node_modules/tiny-greeter/index.js"))).toBe(true);
    // Yarn ships with the app (the instance's host may have none); the worker's Node does not.
    expect(existsSync(path.join(out, ".slipway/node/bin/yarn"))).toBe(true);
    expect(existsSync(path.join(out, ".slipway/node/bin/node"))).toBe(false);
    expect(await serve(first.app, "yarn")).toMatch(new RegExp(`^hello app\\|${process.version.replace(/\./g, "\\.")}\\|\\d+$`));

    const again = await buildApp(files, { app: first.app, timeoutMs: 240_000 });
    expect(again.build.error).toBeUndefined();
    expect(await buildLog(again)).toContain("Skipping yarn install: node_modules restored from the cache");

    // A .yarnrc.yml beside that Yarn 1 lock: still Yarn 1 (Yarn 2+ --immutable would refuse the lock).
    const withYarnrc = await buildApp({ ...files, ".yarnrc.yml": "nodeLinker: node-modules\n" }, { timeoutMs: 240_000 });
    expect(withYarnrc.build.error).toBeUndefined();
    expect(await buildLog(withYarnrc)).toMatch(/Package manager: yarn 1\.\d+\.\d+ \(yarn\.lock \(a Yarn 1 lock file: Yarn 1, \.yarnrc\.yml notwithstanding\)\)/);
  }, 500_000);

  it("Yarn 2+ (packageManager yarn@4.5.0, Plug'n'Play): yarn install --immutable, yarn start served by an agent", async () => {
    const files = {
      ...vendoredPackage,
      "package.json": JSON.stringify({
        name: "berry-app",
        version: "1.0.0",
        packageManager: "yarn@4.5.0",
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        scripts: { start: "node server.js" },
      }),
      ".yarnrc.yml": "",
      "yarn.lock": [
        "# This file is generated by running \"yarn install\" inside your project.",
        "# Manual changes might be lost - proceed with caution!",
        "",
        "__metadata:",
        "  version: 8",
        "  cacheKey: 10c0",
        "",
        '"berry-app@workspace:.":',
        "  version: 0.0.0-use.local",
        '  resolution: "berry-app@workspace:."',
        "  dependencies:",
        '    tiny-greeter: "file:vendor/tiny-greeter"',
        "  languageName: unknown",
        "  linkType: soft",
        "",
        '"tiny-greeter@file:vendor/tiny-greeter::locator=berry-app%40workspace%3A.":',
        "  version: 1.0.0",
        '  resolution: "tiny-greeter@file:vendor/tiny-greeter#vendor/tiny-greeter::hash=13cd9e&locator=berry-app%40workspace%3A."',
        "  checksum: 10c0/454cfce699299c496f90ad78f656077dba79a05a265ee268d14f12a5b9659a5e7d5e65e8a6ab64b35b6b69e19dd7f3a794d0b271ee02637c2b3ccbf7c688d4d1",
        "  languageName: node",
        "  linkType: hard",
        "",
      ].join("\n"),
      "server.js": greeterServer,
    };
    const { app, build, manifest } = await buildApp(files, { timeoutMs: 240_000 });
    expect(build.error).toBeUndefined();
    expect(manifest).toMatchObject({ startupCommand: "yarn start", nodeBinDir: ".slipway/node/bin" });
    const log = await buildLog({ app, build });
    expect(log).toContain("Package manager: yarn 4.5.0 (yarn.lock, yarn@4.5.0 from packageManager)");
    expect(log).toContain("Running yarn install --immutable ...");
    const out = await extractArtifact(stack, build, work);
    // Plug'n'Play: no node_modules; the packages' zips ship in the project's cache.
    expect(existsSync(path.join(out, ".pnp.cjs"))).toBe(true);
    expect(existsSync(path.join(out, "node_modules"))).toBe(false);
    expect(existsSync(path.join(out, ".slipway/node/lib/node_modules/@yarnpkg/cli-dist"))).toBe(true);
    expect(await serve(app, "berry")).toMatch(/^hello app\|v20\./);

    // The package cache is the dependency-cache layer: a rebuild links from it.
    const again = await succeeded(await buildApp(files, { app, timeoutMs: 240_000 }));
    expect(await buildLog(again)).toMatch(/Dependency cache hit: restored yarn-cache/);

    // nodeLinker: node-modules installs node_modules, and the package cache stays out of the output.
    const linked = await succeeded(await buildApp({ ...files, ".yarnrc.yml": "nodeLinker: node-modules\n" }, { timeoutMs: 240_000 }));
    const linkedOut = await extractArtifact(stack, linked.build, work);
    expect(existsSync(path.join(linkedOut, "node_modules/tiny-greeter/index.js"))).toBe(true);
    expect(existsSync(path.join(linkedOut, ".pnp.cjs"))).toBe(false);
    expect(existsSync(path.join(linkedOut, ".yarn/cache"))).toBe(false);
    expect(linked.manifest!.startupCommand).toBe("yarn start");
  }, 400_000);

  it("pnpm-lock.yaml with packageManager pnpm@9.12.0: pnpm install --frozen-lockfile (devDependencies too), pnpm start served by an agent, the store cached, pnpm prune", async () => {
    const files = {
      ...vendoredPackage,
      "vendor/tiny-dev/package.json": JSON.stringify({ name: "tiny-dev", version: "1.0.0", main: "index.js" }),
      "vendor/tiny-dev/index.js": "module.exports = 'dev-only';\n",
      "package.json": JSON.stringify({
        name: "node-app",
        version: "1.0.0",
        packageManager: "pnpm@9.12.0",
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        devDependencies: { "tiny-dev": "file:vendor/tiny-dev" },
        scripts: { build: "node -e \"require('fs').writeFileSync('built.txt', require('tiny-dev'))\"", start: "node server.js" },
      }),
      "pnpm-lock.yaml": [
        "lockfileVersion: '9.0'",
        "",
        "settings:",
        "  autoInstallPeers: true",
        "  excludeLinksFromLockfile: false",
        "",
        "importers:",
        "",
        "  .:",
        "    dependencies:",
        "      tiny-greeter:",
        "        specifier: file:vendor/tiny-greeter",
        "        version: file:vendor/tiny-greeter",
        "    devDependencies:",
        "      tiny-dev:",
        "        specifier: file:vendor/tiny-dev",
        "        version: file:vendor/tiny-dev",
        "",
        "packages:",
        "",
        "  tiny-dev@file:vendor/tiny-dev:",
        "    resolution: {directory: vendor/tiny-dev, type: directory}",
        "",
        "  tiny-greeter@file:vendor/tiny-greeter:",
        "    resolution: {directory: vendor/tiny-greeter, type: directory}",
        "",
        "snapshots:",
        "",
        "  tiny-dev@file:vendor/tiny-dev: {}",
        "",
        "  tiny-greeter@file:vendor/tiny-greeter: {}",
        "",
      ].join("\n"),
      // A stray lock file of another manager is ignored, and said so.
      "package-lock.json": JSON.stringify({ name: "node-app", lockfileVersion: 3, packages: {} }),
      "server.js": greeterServer,
    };
    const first = await buildApp(files, { timeoutMs: 240_000 });
    expect(first.build.error).toBeUndefined();
    expect(first.manifest).toMatchObject({ startupCommand: "pnpm start", nodeBinDir: ".slipway/node/bin" });
    const log = await buildLog(first);
    expect(log).toContain("Package manager: pnpm 9.12.0 (pnpm-lock.yaml, pnpm@9.12.0 from packageManager)");
    expect(log).toContain("Ignoring package-lock.json: pnpm-lock.yaml decides the install");
    expect(log).toContain("Running pnpm install --frozen-lockfile");
    expect(log).toContain("Running pnpm run build ...");
    const out = await extractArtifact(stack, first.build, work);
    expect(await readFile(path.join(out, "built.txt"), "utf8")).toBe("dev-only");
    expect(existsSync(path.join(out, "node_modules/tiny-greeter/index.js"))).toBe(true);
    expect(existsSync(path.join(out, "node_modules/tiny-dev"))).toBe(true);
    expect(existsSync(path.join(out, ".slipway/node/bin/pnpm"))).toBe(true);
    expect(await serve(first.app, "pnpm")).toMatch(/^hello app\|v20\./);

    // Same lock file: the store comes from the dependency cache; devDependencies pruned after the build.
    await stack.api.apps.upsert(first.app, { buildEnv: { PRUNE_DEV_DEPENDENCIES: "true" } });
    const again = await succeeded(await buildApp(files, { app: first.app, timeoutMs: 240_000 }));
    expect(await buildLog(again)).toMatch(/Dependency cache hit: restored pnpm-store/);
    const prunedOut = await extractArtifact(stack, again.build, work);
    expect(await readFile(path.join(prunedOut, "built.txt"), "utf8")).toBe("dev-only");
    expect(existsSync(path.join(prunedOut, "node_modules/tiny-greeter/index.js"))).toBe(true);
    expect(existsSync(path.join(prunedOut, "node_modules/tiny-dev"))).toBe(false);
  }, 400_000);

  it("a packageManager hash that the registry's tarball does not match fails the build", async () => {
    const { build } = await buildApp(
      { "package.json": JSON.stringify({ name: "x", version: "1.0.0", packageManager: `pnpm@9.12.0+sha512.${"0".repeat(128)}` }), "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" },
      { timeoutMs: 240_000 },
    );
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^pnpm 9\.12\.0 from the npm registry does not match packageManager's sha512 hash/);
  }, 300_000);

  it("NODE_VERSION over engines.node: a Node the worker lacks comes from the npm registry, builds, ships and serves", async () => {
    const files = {
      ...vendoredPackage,
      "package.json": JSON.stringify({
        name: "node18-app",
        version: "1.0.0",
        engines: { node: ">=20" },
        dependencies: { "tiny-greeter": "file:vendor/tiny-greeter" },
        scripts: { build: "node -e \"require('fs').writeFileSync('built-with.txt', process.version)\"", start: "node server.js" },
      }),
      "server.js": greeterServer,
    };
    const { app, build, manifest } = await succeeded(await buildApp(files, { buildEnv: { NODE_VERSION: "18" }, timeoutMs: 400_000 }));
    expect(manifest!.nodeVersion).toMatch(/^18\.\d+\.\d+$/);
    expect(manifest).toMatchObject({ startupCommand: "npm start", nodeBinDir: ".slipway/node/bin" });
    const log = await buildLog({ app, build });
    expect(log).toContain(`Node 18 was requested (NODE_VERSION) but this worker has ${process.version.slice(1)}`);
    expect(log).toContain(`Using Node ${manifest!.nodeVersion} (wanted 18) from the worker's tool cache`);
    expect(log).toMatch(/Using npm 10\.\d+\.\d+ from the worker's tool cache/);
    const out = await extractArtifact(stack, build, work);
    expect(await readFile(path.join(out, "built-with.txt"), "utf8")).toBe(`v${manifest!.nodeVersion}`);
    expect(execFileSync(path.join(out, ".slipway/node/bin/node"), ["--version"], { encoding: "utf8" }).trim()).toBe(`v${manifest!.nodeVersion}`);
    expect(existsSync(path.join(out, ".slipway/node/bin/npm"))).toBe(true);
    // The instance's host has Node 20; the app answers from the Node the build shipped.
    expect(await serve(app, "node18")).toMatch(new RegExp(`^hello app\\|v${manifest!.nodeVersion!.replace(/\./g, "\\.")}\\|`));
  }, 600_000);
});
