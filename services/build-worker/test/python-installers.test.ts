import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { eventually } from "../../../test/harness/local-stack";
import { installerTools, lockWith, serveSimpleIndex, type LockTools } from "../../../test/harness/python-locks";
import { spawnAgent, startInProcessStack, writeTree, type InProcessStack } from "../../../test/harness/stack";
import { pythonBuilds } from "../../../test/harness/python-builds";
import { buildWheel } from "../../../test/harness/wheels";
import {
  PIPENV_VERSION,
  pipfileLockPackages,
  POETRY_VERSION,
  poetryLockPackages,
  requirementNames,
  UV_VERSION,
  uvIsPackage,
  uvLockPackages,
} from "../src/platforms/python-installers";

/**
 * Each way a Python app's dependencies get installed, offline: the packages are local wheels
 * (PIP_FIND_LINKS + PIP_NO_INDEX, which builds also give uv), lock files are made by the real uv,
 * Poetry and Pipenv against them, and the installers themselves come from the tool cache.
 */
let stack: InProcessStack;
let work: string;
let wheels: string;
let tools: LockTools;
let index: Awaited<ReturnType<typeof serveSimpleIndex>>;
const agents: ReturnType<typeof spawnAgent>[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-installers-"));
  wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "slipway-greeter", version: "1.0", script: "slipway-greeter", message: "greeter ok" });
  buildWheel(wheels, { name: "slipway-other", version: "2.0", script: "slipway-other", message: "other ok" });
  // Build backends, for the projects that are packages themselves (builds install them offline too).
  execFileSync("python3", ["-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", wheels, "setuptools", "poetry-core>=2,<3", `uv-build==${UV_VERSION}`], { stdio: "ignore" });
  index = await serveSimpleIndex(wheels);
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" });
  tools = await installerTools(stack.env);
}, 600_000);

afterAll(async () => {
  for (const agent of agents) agent.child.kill("SIGTERM");
  await Promise.all(agents.map((agent) => agent.exited));
  await stack?.close();
  await index?.close();
  await rm(work, { recursive: true, force: true });
});

const { logOf, buildApp, rebuild, sitePackages } = pythonBuilds(() => stack, () => work);

/** Serves the app's current release through a real runtime agent (sandboxed) and answers its body. */
async function serve(app: string): Promise<string> {
  const port = await freePort();
  agents.push(spawnAgent(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, `runtime-${app}`) }));
  return eventually(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
    return response?.ok ? response.text() : undefined;
  }, 60_000, `${app} to answer`);
}

/** A dependency-free web server that answers which slipway_greeter it imported. */
const server = (label: string) => `
import os
import slipway_greeter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"${label}|{slipway_greeter.__file__}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
def main():
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
if __name__ == "__main__":
    main()
`;

const servesFromVenv = (body: string, label: string) => {
  const [answer, file] = body.split("|");
  expect(answer).toBe(label);
  expect(file).toMatch(/\/releases\/[^/]+\/antenv\/lib\/python3\.\d+\/site-packages\/slipway_greeter\/__init__\.py$/);
};

/** A project directory with `files`, locked by `lock` (run in it); answers the files plus the lock. */
async function locked(files: Record<string, string>, lockFile: string, lock: (dir: string) => Promise<unknown>): Promise<Record<string, string>> {
  const dir = await writeTree(await mkdtemp(path.join(work, "lock-")), files);
  await lock(dir);
  return { ...files, [lockFile]: await readFile(path.join(dir, lockFile), "utf8") };
}

const uvLock = (dir: string) => lockWith(tools.uv, ["lock", "--no-progress", "--no-index"], dir, { UV_FIND_LINKS: wheels, UV_PYTHON_DOWNLOADS: "never" });
const poetryLock = (dir: string) => lockWith(tools.poetryPython, ["-m", "poetry", "lock", "--no-interaction"], dir);
const pipenvLock = (dir: string) => lockWith(tools.pipenvPython, ["-m", "pipenv", "lock"], dir, { PIPENV_VENV_IN_PROJECT: "1", PIPENV_YES: "1", PIPENV_NOSPIN: "1" });

/** Poetry and Pipenv lock against an index: the test's, serving the local wheels. */
const poetrySource = () => `\n[[tool.poetry.source]]\nname = "local"\nurl = "${index.url}/simple/"\npriority = "primary"\n`;

describe("requirements files (pip)", () => {
  it("CUSTOM_REQUIREMENTSTXT_PATH picks another requirements file, cached like requirements.txt; it must stay inside the source", async () => {
    const files = {
      "app.py": "",
      "requirements.txt": "slipway-no-such-package==9.9\n",
      "requirements/prod.txt": "slipway-greeter==1.0\n",
    };
    const first = await buildApp(files, { buildEnv: { CUSTOM_REQUIREMENTSTXT_PATH: "requirements/prod.txt" } });
    expect(first.build.error).toBeUndefined();
    expect(first.log).toContain("Running pip install -r requirements/prod.txt ...");
    expect(first.log).toContain("Dependency cache miss for antenv");
    expect(existsSync(path.join(await sitePackages(first.build), "slipway_greeter"))).toBe(true);

    const again = await rebuild(first.app);
    expect(again.build.status).toBe("succeeded");
    expect(again.log).toContain("Dependency cache hit: restored antenv");
    expect(again.log).not.toContain("Running pip install");

    const outside = await buildApp(files, { buildEnv: { CUSTOM_REQUIREMENTSTXT_PATH: "../../../etc/passwd" } });
    expect(outside.build.error).toMatch(/^CUSTOM_REQUIREMENTSTXT_PATH must be a path inside the source/);
    const missing = await buildApp(files, { buildEnv: { CUSTOM_REQUIREMENTSTXT_PATH: "requirements/dev.txt" } });
    expect(missing.build.error).toBe("CUSTOM_REQUIREMENTSTXT_PATH is requirements/dev.txt, which is not a file in the source");
  }, 300_000);

  it("a PEP 621 pyproject.toml without a lock file is installed with pip install . (its build backend from the index)", async () => {
    const { build, log } = await buildApp({
      "pyproject.toml": [
        "[project]",
        'name = "mysite"',
        'version = "0.1"',
        'dependencies = ["slipway-greeter==1.0"]',
        "[project.scripts]",
        'mysite = "mysite:main"',
        "[build-system]",
        'requires = ["setuptools"]',
        'build-backend = "setuptools.build_meta"',
        "[tool.setuptools]",
        'py-modules = ["mysite"]',
      ].join("\n"),
      "mysite.py": "def main():\n    print('mysite ok')\n",
    });
    expect(build.error).toBeUndefined();
    expect(log).toContain("No requirements.txt or lock file: running pip install . ...");
    const site = await sitePackages(build);
    expect(existsSync(path.join(site, "slipway_greeter"))).toBe(true);
    expect(existsSync(path.join(site, "mysite.py"))).toBe(true);
  }, 300_000);
});

describe("uv.lock (uv)", () => {
  const project = (deps: string[]) =>
    [
      "[project]",
      'name = "uv-greeter"',
      'version = "0.1.0"',
      'requires-python = ">=3.9"',
      `dependencies = [${deps.map((d) => JSON.stringify(d)).join(", ")}]`,
      "",
      "[project.scripts]",
      'uv-greeter = "uv_greeter:main"',
      "",
      "[build-system]",
      `requires = ["uv_build>=${UV_VERSION},<0.14.0"]`,
      'build-backend = "uv_build"',
      "",
    ].join("\n");

  it("installs the locked dependencies with uv sync, then the project itself (a package, as uv init makes it), not editable; cached by uv.lock; serves", async () => {
    const files = await locked(
      { "pyproject.toml": project(["slipway-greeter==1.0"]), "src/uv_greeter/__init__.py": server("uv"), "README.md": "", "Procfile": "web: uv-greeter\n" },
      "uv.lock",
      uvLock,
    );
    const first = await buildApp(files);
    expect(first.build.error).toBeUndefined();
    expect(first.log).toContain(`Installing dependencies from uv.lock with uv ${UV_VERSION} (uv sync --locked --no-install-project) ...`);
    expect(first.log).toContain("Installing the project itself, not editable (uv sync --no-editable) ...");
    const site = await sitePackages(first.build);
    expect(existsSync(path.join(site, "slipway_greeter"))).toBe(true);
    // Installed as a copy: no .pth file points back into the build directory.
    expect(existsSync(path.join(site, "uv_greeter", "__init__.py"))).toBe(true);
    expect((await readdir(site)).filter((name) => name.endsWith(".pth") && name.includes("greeter"))).toEqual([]);
    // uv syncs into pip's venv without removing pip.
    expect(existsSync(path.join(site, "pip"))).toBe(true);

    const again = await rebuild(first.app);
    expect(again.build.status).toBe("succeeded");
    expect(again.log).toContain("Dependency cache hit: restored antenv");
    expect(again.log).not.toContain("Installing dependencies from uv.lock");
    expect(again.log).toContain("Installing the project itself");

    servesFromVenv(await serve(first.app), "uv");
  }, 300_000);

  it("a project that is no package gets its dependencies only; a lock that no longer matches pyproject.toml fails the build", async () => {
    const plain = { "pyproject.toml": project(["slipway-greeter==1.0"]).replace(/\[build-system\][\s\S]*$/, ""), "app.py": server("plain") };
    const files = await locked(plain, "uv.lock", uvLock);
    const { app, build, log } = await buildApp(files);
    expect(build.error).toBeUndefined();
    expect(log).toContain("The project is not a package (no [build-system], or tool.uv.package = false): installed its dependencies only");
    expect(existsSync(path.join(await sitePackages(build), "slipway_greeter"))).toBe(true);

    // The cache is keyed by uv.lock alone, so the lock is checked against pyproject.toml on a hit too.
    const stale = await buildApp({ ...files, "pyproject.toml": plain["pyproject.toml"].replace('"slipway-greeter==1.0"', '"slipway-greeter==1.0", "slipway-other==2.0"') }, { app });
    expect(stale.build.status).toBe("failed");
    expect(stale.build.error).toBe("uv sync failed (exit code 1)");
    expect(stale.log).toContain("Dependency cache hit: restored antenv");
    expect(stale.log).toContain("The lockfile at `uv.lock` needs to be updated, but `--locked` was provided.");
  }, 300_000);
});

describe("poetry.lock (Poetry)", () => {
  it("exports the locked main dependencies for pip, then installs the project (as poetry new makes it), not editable; cached by poetry.lock; serves", async () => {
    const files = await locked(
      {
        "pyproject.toml": [
          "[project]",
          'name = "greet-app"',
          'version = "0.1.0"',
          'requires-python = ">=3.9"',
          'dependencies = ["slipway-greeter (==1.0)"]',
          "",
          "[tool.poetry]",
          'packages = [{include = "greet_app", from = "src"}]',
          "",
          "[tool.poetry.group.dev.dependencies]",
          'slipway-other = "==2.0"',
          poetrySource(),
          "[build-system]",
          'requires = ["poetry-core>=2.0.0,<3.0.0"]',
          'build-backend = "poetry.core.masonry.api"',
          "",
        ].join("\n"),
        "src/greet_app/__init__.py": "",
        "src/greet_app/server.py": server("poetry"),
        "README.md": "",
        "Procfile": "web: python -m greet_app.server\n",
      },
      "poetry.lock",
      poetryLock,
    );
    expect(poetryLockPackages(files["poetry.lock"]!)).toEqual(["slipway-greeter"]);
    const first = await buildApp(files);
    expect(first.build.error).toBeUndefined();
    expect(first.log).toContain(`Installing dependencies from poetry.lock with Poetry ${POETRY_VERSION} (poetry export --only main, then pip install) ...`);
    expect(first.log).toContain("Installing the project itself, not editable (pip install --no-deps .) ...");
    const site = await sitePackages(first.build);
    expect(existsSync(path.join(site, "slipway_greeter"))).toBe(true);
    expect(existsSync(path.join(site, "greet_app", "server.py"))).toBe(true);
    // The dev group stays out.
    expect(existsSync(path.join(site, "slipway_other"))).toBe(false);

    const again = await rebuild(first.app);
    expect(again.build.status).toBe("succeeded");
    expect(again.log).toContain("Dependency cache hit: restored antenv");
    expect(again.log).not.toContain("poetry export");

    servesFromVenv(await serve(first.app), "poetry");
  }, 300_000);

  it("package-mode = false installs the dependencies only; a stale lock fails the build, saying so", async () => {
    const pyproject = ["[project]", 'name = "deps-only"', 'version = "0"', 'requires-python = ">=3.9"', 'dependencies = ["slipway-greeter"]', "", "[tool.poetry]", "package-mode = false", poetrySource()].join("\n");
    const files = await locked({ "pyproject.toml": pyproject, "app.py": server("deps") }, "poetry.lock", poetryLock);
    const { app, build, log } = await buildApp(files);
    expect(build.error).toBeUndefined();
    expect(log).toContain("The project is not installed itself (package-mode = false): installed its dependencies only");
    expect(existsSync(path.join(await sitePackages(build), "slipway_greeter"))).toBe(true);

    const stale = await buildApp({ ...files, "pyproject.toml": pyproject.replace('["slipway-greeter"]', '["slipway-greeter", "slipway-other"]') }, { app });
    expect(stale.log).toContain("Dependency cache hit: restored antenv");
    expect(stale.build.error).toBe("poetry check --lock failed (exit code 1)");
    expect(stale.log).toContain("pyproject.toml changed significantly since poetry.lock was last generated");
  }, 300_000);
});

describe("Pipfile.lock (Pipenv)", () => {
  const pipfile = (packages: string) =>
    [`[[source]]`, `url = "${index.url}/simple"`, "verify_ssl = false", 'name = "local"', "", "[packages]", packages, "", "[dev-packages]", 'slipway-other = "==2.0"', ""].join("\n");

  it("checks the lock, exports it with its hashes for pip; cached by Pipfile.lock; a stale lock fails", async () => {
    const files = await locked({ Pipfile: pipfile('slipway-greeter = "==1.0"'), "app.py": server("pipenv") }, "Pipfile.lock", pipenvLock);
    expect(pipfileLockPackages(files["Pipfile.lock"]!)).toEqual(["slipway-greeter"]);
    const first = await buildApp(files);
    expect(first.build.error).toBeUndefined();
    expect(first.log).toContain(`Installing dependencies from Pipfile.lock with Pipenv ${PIPENV_VERSION}`);
    const site = await sitePackages(first.build);
    expect(existsSync(path.join(site, "slipway_greeter"))).toBe(true);
    expect(existsSync(path.join(site, "slipway_other"))).toBe(false);

    const again = await rebuild(first.app);
    expect(again.log).toContain("Dependency cache hit: restored antenv");
    expect(again.log).toContain("Checking Pipfile.lock against Pipfile (pipenv verify) ...");
    expect(again.log).not.toContain("pipenv requirements");
    servesFromVenv(await serve(first.app), "pipenv");

    const stale = await buildApp({ ...files, Pipfile: pipfile('slipway-greeter = "*"') }, { app: first.app });
    expect(stale.log).toContain("Dependency cache hit: restored antenv");
    expect(stale.build.error).toBe("pipenv verify failed (exit code 1)");
    expect(stale.log).toContain("Pipfile.lock is out-of-date");
  }, 300_000);

  it("a Pipfile without its lock fails, saying what to do", async () => {
    const { build } = await buildApp({ Pipfile: pipfile('slipway-greeter = "==1.0"'), "app.py": "" });
    expect(build.error).toBe("Pipfile has no Pipfile.lock beside it: run `pipenv lock` and deploy Pipfile.lock too");
  });
});

describe("which installer, and what the app depends on", () => {
  it("requirements.txt wins over a lock file beside it, as in Oryx, and the log says so", async () => {
    const files = await locked({ "pyproject.toml": '[project]\nname = "x"\nversion = "0"\ndependencies = ["slipway-other==2.0"]\n', "requirements.txt": "slipway-greeter==1.0\n", "app.py": "" }, "uv.lock", uvLock);
    const { build, log } = await buildApp(files);
    expect(build.error).toBeUndefined();
    expect(log).toContain("Found requirements.txt and uv.lock: installing from requirements.txt, as Oryx does (without it, uv.lock would be used)");
    const site = await sitePackages(build);
    expect(existsSync(path.join(site, "slipway_greeter"))).toBe(true);
    expect(existsSync(path.join(site, "slipway_other"))).toBe(false);
  });

  it("reads package names from each kind of lock, main dependencies only", () => {
    const uvLockText = [
      "version = 1",
      "[[package]]",
      'name = "web"',
      'version = "0.1.0"',
      'source = { virtual = "." }',
      'dependencies = [{ name = "Flask" }]',
      '[package.dev-dependencies]\ndev = [{ name = "pytest" }]',
      "[[package]]",
      'name = "flask"',
      'version = "3.1.0"',
      'source = { registry = "https://pypi.org/simple" }',
      'dependencies = [{ name = "werkzeug" }]',
      "[[package]]",
      'name = "werkzeug"',
      'version = "3.1.0"',
      'source = { registry = "https://pypi.org/simple" }',
      "[[package]]",
      'name = "pytest"',
      'version = "8.0.0"',
      'source = { registry = "https://pypi.org/simple" }',
    ].join("\n");
    expect(uvLockPackages(uvLockText).sort()).toEqual(["flask", "werkzeug"]);
    expect(poetryLockPackages('[[package]]\nname = "Django"\ngroups = ["main"]\n[[package]]\nname = "pytest"\ngroups = ["dev"]\n')).toEqual(["django"]);
    expect(poetryLockPackages('[[package]]\nname = "fastapi"\ncategory = "main"\n[[package]]\nname = "black"\ncategory = "dev"\n')).toEqual(["fastapi"]);
    expect(pipfileLockPackages(JSON.stringify({ default: { Flask: {}, "zope.interface": {} }, develop: { pytest: {} } }))).toEqual(["flask", "zope-interface"]);
    expect(requirementNames("Flask>=3\nzope.interface\n")).toEqual(["flask", "zope-interface"]);
    expect(uvIsPackage({ "build-system": {} })).toBe(true);
    expect(uvIsPackage({ "build-system": {}, tool: { uv: { package: false } } })).toBe(false);
    expect(uvIsPackage({ tool: { uv: { package: true } } })).toBe(true);
    expect(uvIsPackage({})).toBe(false);
  });
});
