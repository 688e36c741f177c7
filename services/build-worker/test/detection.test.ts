import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTree } from "../../../test/harness/stack";
import { BuildFailure } from "../src/errors";
import { detectPlatform } from "../src/platforms/index";
import { readPackageJson } from "../src/platforms/node-package-json";
import { choosePackageManager } from "../src/platforms/node-package-managers";
import type { PlatformContext } from "../src/platforms/platform";
import { planInstall, UV_VERSION } from "../src/platforms/python-installers";

/**
 * What each platform chooses from the files a source carries, without building: no Redis, no
 * storage, no sandbox, no installer run.
 */

let work: string;
let count = 0;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-detection-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const tree = (files: Record<string, string>) => writeTree(path.join(work, String(++count)), files);

describe("choosing the platform", () => {
  const detect = async (files: Record<string, string>, forced?: string) => (await detectPlatform(await tree(files), forced)).name;

  it("a marker file of its own names the platform", async () => {
    for (const marker of ["requirements.txt", "pyproject.toml", "setup.py", "Pipfile", "runtime.txt"]) {
      expect(await detect({ [marker]: "" }), marker).toBe("python");
    }
    expect(await detect({ "package.json": "{}" })).toBe("nodejs");
  });

  it("Python wins a tie of markers; a marker beats a stray .py file; a .py file alone is Python", async () => {
    expect(await detect({ "package.json": "{}", "requirements.txt": "" })).toBe("python");
    expect(await detect({ "package.json": "{}", "build.py": "" })).toBe("nodejs");
    expect(await detect({ "app.py": "print('hi')\n" })).toBe("python");
  });

  it("PLATFORM_NAME overrides detection, in Oryx's names or node", async () => {
    const both = { "package.json": "{}", "requirements.txt": "" };
    expect(await detect(both, "nodejs")).toBe("nodejs");
    expect(await detect(both, " Node ")).toBe("nodejs");
    expect(await detect({ "package.json": "{}" }, "python")).toBe("python");
    await expect(detect(both, "ruby")).rejects.toThrow(/PLATFORM_NAME "ruby" is not a platform this worker builds \(python, nodejs\)/);
  });

  it("a source with nothing a platform recognises fails clearly", async () => {
    const failure = detect({ "README.md": "# hi\n" });
    await expect(failure).rejects.toBeInstanceOf(BuildFailure);
    await expect(failure).rejects.toThrow(/no supported platform detected/);
  });
});

/** A platform context for choosing only: anything that would run or cache refuses. */
function choosingContext(sourceDir: string, options: Record<string, string> = {}) {
  const lines: string[] = [];
  const refuse = () => Promise.reject(new Error("choosing an installer must run nothing"));
  const ctx: PlatformContext = {
    sourceDir,
    baseEnv: { PATH: "/usr/bin:/bin", HOME: path.join(sourceDir, "..", "home") },
    options,
    cache: { restore: refuse, save: refuse },
    tool: refuse,
    allowReading: () => undefined,
    toolchains: {},
    log: (line) => lines.push(line),
    phase: (_name, work) => work(),
    run: refuse,
  };
  return { ctx, lines };
}

describe("choosing the Python installer", () => {
  const UV_LOCK = [
    "version = 1",
    "[[package]]",
    'name = "app"',
    'version = "0.1.0"',
    'source = { virtual = "." }',
    'dependencies = [{ name = "flask" }]',
    "[[package]]",
    'name = "flask"',
    'version = "3.0.3"',
    'source = { registry = "https://example.invalid/simple" }',
    "",
  ].join("\n");
  const POETRY_LOCK = ['[[package]]', 'name = "Django"', 'version = "5.1"', 'groups = ["main"]', "[[package]]", 'name = "pytest"', 'version = "8.3"', 'groups = ["dev"]', ""].join("\n");
  const PIPFILE_LOCK = JSON.stringify({ _meta: {}, default: { fastapi: {} }, develop: { pytest: {} } });
  const PYPROJECT = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["Flask>=3", "gunicorn"]\n';

  const choose = async (files: Record<string, string>, options: Record<string, string> = {}) => {
    const sourceDir = await tree(files);
    const { ctx, lines } = choosingContext(sourceDir, options);
    const venv = path.join(sourceDir, "antenv");
    const plan = await planInstall(ctx, { python: { version: "3.11.7", command: "/usr/bin/python3", prefix: "/usr", mounts: [] }, venvName: "antenv", venv, env: ctx.baseEnv });
    return { plan, lines };
  };

  // PYTHON_INSTALLER=pip: these choose the file; which installer runs it is tested below.
  const PIP = { PYTHON_INSTALLER: "pip" };

  it("requirements.txt: pip, keyed by its text", async () => {
    const { plan } = await choose({ "requirements.txt": "Flask==3.0.3  # web\n-r base.txt\ngunicorn\n" }, PIP);
    expect(plan).toMatchObject({ installer: "pip", packages: ["flask", "gunicorn"], inputs: { requirements: "Flask==3.0.3  # web\n-r base.txt\ngunicorn\n" } });
  });

  it("requirements.txt wins over lock files beside it, as in Oryx, and says so", async () => {
    const { plan, lines } = await choose({ "requirements.txt": "flask\n", "uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT }, PIP);
    expect(plan.installer).toBe("pip");
    expect(lines.join("\n")).toMatch(/Found requirements.txt and uv.lock: installing from requirements.txt/);
  });

  it("requirements files: uv unless PYTHON_INSTALLER=pip, and the cache key says which installer", async () => {
    const requirements = { "requirements.txt": "Flask==3.0.3\n" };
    const uv = (await choose(requirements)).plan;
    expect(uv).toMatchObject({ installer: "uv", packages: ["flask"], inputs: { requirements: "Flask==3.0.3\n", installer: `uv ${UV_VERSION}, else pip` } });
    const pip = (await choose(requirements, { PYTHON_INSTALLER: " PIP " })).plan;
    expect(pip.inputs).toEqual({ requirements: "Flask==3.0.3\n", installer: "pip" });
    const custom = (await choose({ "reqs/prod.txt": "fastapi\n" }, { CUSTOM_REQUIREMENTSTXT_PATH: "reqs/prod.txt" })).plan;
    expect(custom).toMatchObject({ installer: "uv", inputs: { requirementsFile: "reqs/prod.txt" } });
    expect((await choose(requirements, { PYTHON_INSTALLER: "uv" })).plan.installer).toBe("uv");
    // A mistyped value fails whatever the source carries, not only where it would have mattered.
    await expect(choose({ "uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT }, { PYTHON_INSTALLER: "poetry" })).rejects.toThrow('PYTHON_INSTALLER must be uv or pip (it is "poetry")');
  });

  it("uv.lock: uv, packages reachable from the project", async () => {
    const { plan } = await choose({ "uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT });
    expect(plan).toMatchObject({ installer: "uv", packages: ["flask"] });
    expect(plan.inputs).toMatchObject({ lock: UV_LOCK, installer: expect.stringMatching(/^uv \d/) });
  });

  it("poetry.lock: Poetry, the main group only", async () => {
    const { plan } = await choose({ "poetry.lock": POETRY_LOCK, "pyproject.toml": PYPROJECT });
    expect(plan).toMatchObject({ installer: "Poetry", packages: ["django"] });
  });

  it("Pipfile.lock: Pipenv, the default section only; a Pipfile without its lock fails", async () => {
    expect((await choose({ Pipfile: "", "Pipfile.lock": PIPFILE_LOCK })).plan).toMatchObject({ installer: "Pipenv", packages: ["fastapi"] });
    await expect(choose({ Pipfile: "[packages]\nflask = \"*\"\n" })).rejects.toThrow(/Pipfile has no Pipfile.lock beside it: run `pipenv lock`/);
  });

  it("several lock files: uv.lock, then poetry.lock, then Pipfile.lock, with a line saying which", async () => {
    const { plan, lines } = await choose({ "poetry.lock": POETRY_LOCK, "uv.lock": UV_LOCK, "pyproject.toml": PYPROJECT });
    expect(plan.installer).toBe("uv");
    expect(lines).toContain("Found uv.lock, poetry.lock: installing from uv.lock only");
    expect((await choose({ "poetry.lock": POETRY_LOCK, "Pipfile.lock": PIPFILE_LOCK, "pyproject.toml": PYPROJECT })).plan.installer).toBe("Poetry");
  });

  it("a lock file needs the pyproject.toml it locks", async () => {
    await expect(choose({ "uv.lock": UV_LOCK })).rejects.toThrow(/uv.lock has no pyproject.toml beside it/);
  });

  it("pyproject.toml or setup.py alone: pip install . (not cached: nothing pins it)", async () => {
    const pyproject = (await choose({ "pyproject.toml": PYPROJECT })).plan;
    expect(pyproject).toMatchObject({ installer: "pip", packages: ["flask", "gunicorn"] });
    expect(pyproject.inputs).toBeUndefined();
    const setup = (await choose({ "setup.py": "from setuptools import setup\nsetup(name='app')\n" })).plan;
    expect(setup).toMatchObject({ installer: "pip", packages: [] });
  });

  it("nothing to install: none", async () => {
    expect((await choose({ "app.py": "" })).plan).toMatchObject({ installer: "none", packages: [] });
  });

  it("CUSTOM_REQUIREMENTSTXT_PATH: pip from that file, which must be inside the source", async () => {
    const files = { "requirements.txt": "django\n", "reqs/prod.txt": "fastapi\n" };
    const { plan } = await choose(files, { CUSTOM_REQUIREMENTSTXT_PATH: "reqs/prod.txt", ...PIP });
    expect(plan).toMatchObject({ installer: "pip", packages: ["fastapi"], inputs: { requirements: "fastapi\n", requirementsFile: "reqs/prod.txt" } });
    await expect(choose(files, { CUSTOM_REQUIREMENTSTXT_PATH: "../prod.txt" })).rejects.toThrow(/must be a path inside the source/);
    await expect(choose(files, { CUSTOM_REQUIREMENTSTXT_PATH: "reqs/missing.txt" })).rejects.toThrow(/not a file in the source/);
  });
});

describe("choosing the Node package manager from package.json and lock files", () => {
  const choose = async (files: Record<string, string>) => {
    const sourceDir = await tree(files);
    return choosePackageManager(sourceDir, (await readPackageJson(sourceDir)).packageManager);
  };

  it("the lock file names the manager: package-lock.json npm, yarn.lock Yarn, pnpm-lock.yaml pnpm, none npm", async () => {
    expect(await choose({ "package.json": "{}" })).toMatchObject({ name: "npm", reason: "no lock file" });
    expect(await choose({ "package.json": "{}", "package-lock.json": "{}" })).toMatchObject({ name: "npm", lockFile: "package-lock.json" });
    expect(await choose({ "package.json": "{}", "yarn.lock": "# yarn lockfile v1\n" })).toMatchObject({ name: "yarn", berry: false });
    expect(await choose({ "package.json": "{}", "pnpm-lock.yaml": "lockfileVersion: '9.0'\n" })).toMatchObject({ name: "pnpm", range: "9" });
  });

  it("package.json's packageManager field names the manager and its exact version", async () => {
    const pnpm = await choose({ "package.json": JSON.stringify({ packageManager: "pnpm@9.12.0" }) });
    expect(pnpm).toMatchObject({ name: "pnpm", range: "9.12.0", reason: "packageManager pnpm, pnpm@9.12.0 from packageManager" });
    const berry = await choose({ "package.json": JSON.stringify({ packageManager: "yarn@4.5.0" }), "yarn.lock": "" });
    expect(berry).toMatchObject({ name: "yarn", berry: true, pnp: true, range: "4.5.0" });
  });

  it("a package.json that does not parse fails clearly", async () => {
    await expect(choose({ "package.json": "{ nope" })).rejects.toThrow(/package.json does not parse/);
  });
});
