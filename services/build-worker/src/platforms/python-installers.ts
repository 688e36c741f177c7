import { lstat } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { readUntrustedText } from "@slipway/shared";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import { BuildFailure } from "../errors";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";
import { defaultPython } from "./python-versions";

/**
 * How a Python app's dependencies get into its virtualenv, by what the source carries:
 *
 * 1. `CUSTOM_REQUIREMENTSTXT_PATH` (build option), else `requirements.txt`: pip, as Oryx does
 *    (a requirements.txt wins over lock files beside it, as in Oryx).
 * 2. `uv.lock`: uv (`uv sync --locked` into the venv).
 * 3. `poetry.lock`: Poetry exports the locked main dependencies; pip installs them.
 * 4. `Pipfile.lock`: Pipenv checks the lock against the Pipfile and exports it; pip installs it.
 * 5. `pyproject.toml` or `setup.py` without any of those: `pip install .`.
 *
 * uv, Poetry and Pipenv come from the package index into the worker's tool cache (versions
 * pinned here), never into the app's venv. Whatever installs from a lock or requirements file
 * caches the venv keyed by that file's text; the project itself, when it is a package, is
 * installed after that (never cached: its source changes without its lock changing), and never
 * editable (an editable install points at the build directory, which the runtime does not have).
 */

export const UV_VERSION = "0.13.6";
export const POETRY_VERSION = "2.5.1";
export const POETRY_PLUGIN_EXPORT_VERSION = "1.10.1";
export const PIPENV_VERSION = "2026.10.3";

/** Lock files larger than this fail the build rather than being read in part. */
const MAX_LOCK_BYTES = 16 * 1024 * 1024;

export interface InstallTarget {
  python: PythonInterpreter;
  /** The venv's directory name in the source ("antenv") and its absolute path. */
  venvName: string;
  venv: string;
  /** The build's environment with the venv active. */
  env: Record<string, string>;
  /**
   * Runs on a fresh install just before the venv is saved to the dependency cache: what it adds to
   * the venv (the server the app needs) is cached with the dependencies, not reinstalled on a hit.
   */
  beforeCacheSave?: () => Promise<void>;
}

export interface InstallOutcome {
  /** "pip", "uv", "Poetry", "Pipenv", or "none". */
  installer: string;
  /** Normalized names of the packages the app depends on (frameworks are detected from them). */
  packages: string[];
}

interface Plan {
  installer: string;
  /** The cache key's inputs beyond the interpreter: the lock or requirements text, and the installer's version. */
  inputs?: Record<string, string>;
  packages: string[];
  /** Installs the dependencies into the (new, empty) venv. */
  dependencies(): Promise<void>;
  /**
   * With the venv from the cache instead: checks what the install would have (the lock still
   * matches its pyproject.toml or Pipfile), since the cache is keyed by the lock alone.
   */
  verify?(): Promise<void>;
  /** Installs the project itself, after the dependencies came from the install or from the cache. */
  project?(): Promise<void>;
}

/** Creates the venv and installs into it what the source asks for, through the dependency cache. */
export async function installDependencies(ctx: PlatformContext, target: InstallTarget): Promise<InstallOutcome> {
  const plan = await planInstall(ctx, target);
  const key = plan.inputs && { layer: target.venvName, inputs: { python: target.python.version, interpreter: target.python.command, ...plan.inputs } };
  if (key && (await ctx.cache.restore(key, target.venv))) {
    ctx.log(`Skipping venv creation and ${plan.installer} install: dependencies restored from the cache`);
    await plan.verify?.();
  } else {
    ctx.log(`Creating virtual environment ${target.venvName} ...`);
    await ctx.run(target.python.command, ["-m", "venv", target.venvName], { label: "python -m venv" });
    await plan.dependencies();
    await target.beforeCacheSave?.();
    if (key) await ctx.cache.save(key, target.venv);
  }
  await plan.project?.();
  return { installer: plan.installer, packages: plan.packages };
}

async function planInstall(ctx: PlatformContext, target: InstallTarget): Promise<Plan> {
  const dir = ctx.sourceDir;
  const custom = ctx.options.CUSTOM_REQUIREMENTSTXT_PATH;
  if (custom) {
    const file = await checkedRelative(dir, custom, "CUSTOM_REQUIREMENTSTXT_PATH");
    const text = await readUntrustedText(path.join(dir, file));
    if (text === undefined) throw new BuildFailure(`CUSTOM_REQUIREMENTSTXT_PATH is ${custom}, which is not a file in the source`);
    return pipPlan(ctx, target, file, text);
  }
  const locks: string[] = [];
  for (const lock of ["uv.lock", "poetry.lock", "Pipfile.lock"]) if (await isFile(path.join(dir, lock))) locks.push(lock);
  const requirements = await readUntrustedText(path.join(dir, "requirements.txt"));
  if (requirements !== undefined) {
    if (locks.length) ctx.log(`Found requirements.txt and ${locks.join(", ")}: installing from requirements.txt, as Oryx does (without it, ${locks[0]} would be used)`);
    return pipPlan(ctx, target, "requirements.txt", requirements);
  }
  if (locks.length > 1) ctx.log(`Found ${locks.join(", ")}: installing from ${locks[0]} only`);
  switch (locks[0]) {
    case "uv.lock":
      return uvPlan(ctx, target, await readPyproject(dir, "uv.lock"), await readLock(dir, "uv.lock"));
    case "poetry.lock":
      return poetryPlan(ctx, target, await readPyproject(dir, "poetry.lock"), await readLock(dir, "poetry.lock"));
    case "Pipfile.lock":
      return pipenvPlan(ctx, target, await readLock(dir, "Pipfile.lock"));
  }
  if (await isFile(path.join(dir, "Pipfile"))) {
    throw new BuildFailure("Pipfile has no Pipfile.lock beside it: run `pipenv lock` and deploy Pipfile.lock too");
  }
  const pyprojectText = await readUntrustedText(path.join(dir, "pyproject.toml"));
  if (pyprojectText !== undefined || (await isFile(path.join(dir, "setup.py")))) {
    const venvPython = path.join(target.venv, "bin", "python");
    return {
      installer: "pip",
      packages: pyprojectText === undefined ? [] : projectDependencyNames(parsePyproject(pyprojectText)),
      dependencies: async () => {
        ctx.log("No requirements.txt or lock file: running pip install . ...");
        await ctx.run(venvPython, ["-m", "pip", "install", "."], { env: target.env, label: "pip install ." });
      },
    };
  }
  return {
    installer: "none",
    packages: [],
    dependencies: async () => ctx.log("No requirements.txt, lock file, pyproject.toml or setup.py: nothing to install."),
  };
}

// ---- pip -------------------------------------------------------------------------------------

function pipPlan(ctx: PlatformContext, target: InstallTarget, file: string, text: string): Plan {
  const venvPython = path.join(target.venv, "bin", "python");
  return {
    installer: "pip",
    inputs: file === "requirements.txt" ? { requirements: text } : { requirements: text, requirementsFile: file },
    packages: requirementNames(text),
    dependencies: async () => {
      ctx.log(`Running pip install -r ${file} ...`);
      await ctx.run(venvPython, ["-m", "pip", "install", "-r", file], { env: target.env, label: `pip install -r ${file}` });
    },
  };
}

/** Requirement names, normalized, from a requirements file (comments, options and versions dropped). */
export function requirementNames(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line && !line.startsWith("-"))
    .map((line) => normalizeName(line.split(/[<>=!~;[\s@]/)[0]!))
    .filter(Boolean);
}

// ---- uv --------------------------------------------------------------------------------------

function uvPlan(ctx: PlatformContext, target: InstallTarget, pyproject: Pyproject, lock: string): Plan {
  const packaged = uvIsPackage(pyproject);
  let uv: Promise<string> | undefined;
  const uvCommand = () => (uv ??= (async () => path.join(await ctx.tool(uvTool(await defaultPython(ctx))), "bin", "uv"))());
  const env = {
    ...target.env,
    UV_PROJECT_ENVIRONMENT: target.venv,
    UV_PYTHON: target.python.command,
    // The build's interpreter only: uv never downloads one, nor picks another.
    UV_PYTHON_DOWNLOADS: "never",
    UV_PYTHON_PREFERENCE: "only-system",
    // Copies, not links into uv's cache in the build's home (which goes with the build).
    UV_LINK_MODE: "copy",
    UV_COMPILE_BYTECODE: "1",
    UV_NO_PROGRESS: "1",
    // The host's trust store (an operator's proxy CA), as pip's requests does, not uv's bundled roots.
    UV_SYSTEM_CERTS: "1",
    ...uvIndexSettings(target.env),
  };
  // Exactness is pip's venv plus the lock: --inexact keeps pip (the runtime and later steps use it).
  const sync = ["sync", "--locked", "--no-default-groups", "--inexact", "--no-editable", ...(noIndex(target.env) ? ["--no-index"] : [])];
  return {
    installer: "uv",
    inputs: { installer: `uv ${UV_VERSION}`, lock },
    packages: uvLockPackages(lock),
    dependencies: async () => {
      const command = await uvCommand();
      ctx.log(`Installing dependencies from uv.lock with uv ${UV_VERSION} (uv sync --locked --no-install-project) ...`);
      await ctx.run(command, [...sync, "--no-install-workspace"], { env, label: "uv sync" });
    },
    verify: async () => {
      const command = await uvCommand();
      ctx.log("Checking uv.lock against pyproject.toml and the restored venv (uv sync --locked --no-install-project) ...");
      await ctx.run(command, [...sync, "--no-install-workspace"], { env, label: "uv sync" });
    },
    project: async () => {
      if (!packaged) {
        ctx.log("The project is not a package (no [build-system], or tool.uv.package = false): installed its dependencies only");
        return;
      }
      const command = await uvCommand();
      ctx.log("Installing the project itself, not editable (uv sync --no-editable) ...");
      await ctx.run(command, sync, { env, label: "uv sync (the project)" });
    },
  };
}

/** uv's own rule: `tool.uv.package` when set, else whether the project has a build system. */
export function uvIsPackage(pyproject: Pyproject): boolean {
  const explicit = table(table(pyproject.tool).uv).package;
  return typeof explicit === "boolean" ? explicit : pyproject["build-system"] !== undefined;
}

/** The build's index settings, in uv's words (uv reads no PIP_* variable); PIP_NO_INDEX is `--no-index`. */
function uvIndexSettings(env: Record<string, string>): Record<string, string> {
  const settings: Record<string, string> = {};
  if (env.PIP_INDEX_URL) settings.UV_DEFAULT_INDEX = env.PIP_INDEX_URL;
  if (env.PIP_EXTRA_INDEX_URL) settings.UV_INDEX = env.PIP_EXTRA_INDEX_URL;
  // pip separates find-links with whitespace, uv with commas.
  if (env.PIP_FIND_LINKS) settings.UV_FIND_LINKS = env.PIP_FIND_LINKS.split(/\s+/).filter(Boolean).join(",");
  if (env.PIP_TRUSTED_HOST) settings.UV_INSECURE_HOST = env.PIP_TRUSTED_HOST;
  return settings;
}

/** PIP_NO_INDEX, which uv takes only as a flag. */
const noIndex = (env: Record<string, string>) => !!env.PIP_NO_INDEX && !/^(0|false|no|off)$/i.test(env.PIP_NO_INDEX);

/** The packages the project's main dependencies lock to: those reachable from the project's own entry. */
export function uvLockPackages(lock: string): string[] {
  const packages = (array(parseLockToml(lock, "uv.lock").package) as Record<string, unknown>[]).filter((p) => typeof p.name === "string");
  const byName = new Map(packages.map((p) => [normalizeName(p.name as string), p]));
  const root = packages.find((p) => {
    const source = table(p.source);
    return source.editable === "." || source.virtual === ".";
  });
  if (!root) return [...byName.keys()];
  const seen = new Set<string>();
  const queue = [root];
  while (queue.length) {
    for (const dep of array(queue.pop()!.dependencies) as Record<string, unknown>[]) {
      const name = typeof dep.name === "string" ? normalizeName(dep.name) : undefined;
      if (!name || seen.has(name)) continue;
      seen.add(name);
      const next = byName.get(name);
      if (next) queue.push(next);
    }
  }
  seen.delete(normalizeName(root.name as string));
  return [...seen];
}

export function uvTool(base: PythonInterpreter): ToolSpec {
  // uv is one static binary: the venv it comes in only carries it.
  return { ...pythonTool("uv", UV_VERSION, base, [`uv==${UV_VERSION}`]), version: UV_VERSION };
}

// ---- Poetry ----------------------------------------------------------------------------------

function poetryPlan(ctx: PlatformContext, target: InstallTarget, pyproject: Pyproject, lock: string): Plan {
  const venvPython = path.join(target.venv, "bin", "python");
  const exported = path.join(ctx.baseEnv.HOME ?? target.venv, "slipway-poetry-requirements.txt");
  const poetry = async (args: string[], label: string) => {
    const tool = await ctx.tool(poetryTool(await defaultPython(ctx)));
    const env = { ...ctx.baseEnv, POETRY_NO_INTERACTION: "1", POETRY_VIRTUALENVS_CREATE: "false" };
    await ctx.run(path.join(tool, "bin", "python"), ["-m", "poetry", ...args], { env, label });
  };
  return {
    installer: "Poetry",
    inputs: { installer: `poetry ${POETRY_VERSION}`, lock },
    packages: poetryLockPackages(lock),
    dependencies: async () => {
      ctx.log(`Installing dependencies from poetry.lock with Poetry ${POETRY_VERSION} (poetry export --only main, then pip install) ...`);
      await poetry(["export", "--only", "main", "--format", "requirements.txt", "--output", exported], "poetry export");
      await ctx.run(venvPython, ["-m", "pip", "install", "-r", exported], { env: target.env, label: "pip install (from poetry.lock)" });
    },
    verify: async () => {
      ctx.log("Checking poetry.lock against pyproject.toml (poetry check --lock) ...");
      await poetry(["check", "--lock"], "poetry check --lock");
    },
    project: async () => {
      const reason = await poetryNotAPackage(pyproject, ctx.sourceDir);
      if (reason) {
        ctx.log(`The project is not installed itself (${reason}): installed its dependencies only`);
        return;
      }
      ctx.log("Installing the project itself, not editable (pip install --no-deps .) ...");
      await ctx.run(venvPython, ["-m", "pip", "install", "--no-deps", "."], { env: target.env, label: "pip install . (the project)" });
    },
  };
}

/**
 * Why Poetry's project is not a package to install, or undefined when it is. Like `poetry install`,
 * which only warns when the project cannot be installed, a project that names no package of its
 * own is fine: Poetry is often used for dependencies alone.
 */
export async function poetryNotAPackage(pyproject: Pyproject, sourceDir: string): Promise<string | undefined> {
  const poetry = table(table(pyproject.tool).poetry);
  if (poetry["package-mode"] === false) return "package-mode = false";
  if (pyproject["build-system"] === undefined) return "no [build-system]";
  if (poetry.packages !== undefined) return undefined;
  const name = table(pyproject.project).name ?? poetry.name;
  if (typeof name !== "string") return "no project name";
  const module = normalizeName(name).replace(/-/g, "_");
  for (const candidate of [module, `${module}.py`, `src/${module}`, `src/${module}.py`]) {
    if (await lstat(path.join(sourceDir, candidate)).then(() => true, () => false)) return undefined;
  }
  return `no package ${module} in the source; set package-mode = false to say so`;
}

/** The packages of poetry.lock's main group. */
export function poetryLockPackages(lock: string): string[] {
  const packages = array(parseLockToml(lock, "poetry.lock").package) as Record<string, unknown>[];
  return packages
    .filter((p) => {
      if (Array.isArray(p.groups)) return p.groups.includes("main");
      if (typeof p.category === "string") return p.category === "main"; // lock files of Poetry 1.x
      return true;
    })
    .map((p) => (typeof p.name === "string" ? normalizeName(p.name) : ""))
    .filter(Boolean);
}

export function poetryTool(base: PythonInterpreter): ToolSpec {
  return pythonTool("poetry", `${POETRY_VERSION}+export${POETRY_PLUGIN_EXPORT_VERSION}`, base, [`poetry==${POETRY_VERSION}`, `poetry-plugin-export==${POETRY_PLUGIN_EXPORT_VERSION}`]);
}

// ---- Pipenv ----------------------------------------------------------------------------------

function pipenvPlan(ctx: PlatformContext, target: InstallTarget, lock: string): Plan {
  const venvPython = path.join(target.venv, "bin", "python");
  const exported = path.join(ctx.baseEnv.HOME ?? target.venv, "slipway-pipenv-requirements.txt");
  const pipenv = async (command: (python: string) => [string, string[]], label: string) => {
    const tool = await ctx.tool(pipenvTool(await defaultPython(ctx)));
    const env = { ...ctx.baseEnv, PIPENV_YES: "1", PIPENV_NOSPIN: "1", PIPENV_VERBOSITY: "-1", PIPENV_IGNORE_VIRTUALENVS: "1" };
    const [file, args] = command(path.join(tool, "bin", "python"));
    await ctx.run(file, args, { env, label });
  };
  return {
    installer: "Pipenv",
    inputs: { installer: `pipenv ${PIPENV_VERSION}`, lock },
    packages: pipfileLockPackages(lock),
    dependencies: async () => {
      ctx.log(`Installing dependencies from Pipfile.lock with Pipenv ${PIPENV_VERSION} (pipenv verify, pipenv requirements, then pip install) ...`);
      await pipenv((python) => [python, ["-m", "pipenv", "verify"]], "pipenv verify");
      await pipenv((python) => ["/bin/sh", ["-c", 'exec "$0" -m pipenv requirements --hash > "$1"', python, exported]], "pipenv requirements");
      await ctx.run(venvPython, ["-m", "pip", "install", "-r", exported], { env: target.env, label: "pip install (from Pipfile.lock)" });
    },
    verify: async () => {
      ctx.log("Checking Pipfile.lock against Pipfile (pipenv verify) ...");
      await pipenv((python) => [python, ["-m", "pipenv", "verify"]], "pipenv verify");
    },
  };
}

/** The packages of Pipfile.lock's `default` section. */
export function pipfileLockPackages(lock: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(lock);
  } catch (error) {
    throw new BuildFailure(`Pipfile.lock does not parse: ${(error as Error).message}`);
  }
  return Object.keys(table(table(parsed).default)).map(normalizeName);
}

export function pipenvTool(base: PythonInterpreter): ToolSpec {
  return pythonTool("pipenv", PIPENV_VERSION, base, [`pipenv==${PIPENV_VERSION}`]);
}

// ---- helpers ---------------------------------------------------------------------------------

/**
 * A tool that lives in a venv of its own in the tool cache, made with the worker's default
 * interpreter (part of its version: the venv needs that interpreter). Its console scripts name
 * the staging directory it was installed in, so it is run as `<dir>/bin/python -m <tool>`.
 */
function pythonTool(name: string, version: string, base: PythonInterpreter, requirements: string[]): ToolSpec {
  return {
    name,
    version: `${version}-py${base.version}`,
    install: async (dir, run, sandbox) => {
      for (const mount of base.mounts) sandbox.allowReading(mount);
      await run(base.command, ["-m", "venv", dir]);
      await run(path.join(dir, "bin", "python"), ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", ...requirements]);
    },
  };
}

export type Pyproject = Record<string, unknown>;

async function readPyproject(dir: string, lock: string): Promise<Pyproject> {
  const text = await readUntrustedText(path.join(dir, "pyproject.toml"));
  if (text === undefined) throw new BuildFailure(`${lock} has no pyproject.toml beside it`);
  return parsePyproject(text);
}

function parsePyproject(text: string): Pyproject {
  try {
    return parseToml(text) as Pyproject;
  } catch (error) {
    throw new BuildFailure(`pyproject.toml does not parse: ${(error as Error).message.split("\n")[0]}`);
  }
}

function parseLockToml(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new BuildFailure(`${file} does not parse: ${(error as Error).message.split("\n")[0]}`);
  }
}

async function readLock(dir: string, file: string): Promise<string> {
  const text = await readUntrustedText(path.join(dir, file), MAX_LOCK_BYTES);
  if (text === undefined) throw new BuildFailure(`${file} is not a regular file`);
  if (Buffer.byteLength(text) >= MAX_LOCK_BYTES) throw new BuildFailure(`${file} is larger than ${MAX_LOCK_BYTES / 1024 / 1024} MiB`);
  return text;
}

/** PEP 621 `[project] dependencies`, by name. */
function projectDependencyNames(pyproject: Pyproject): string[] {
  return requirementNames((array(table(pyproject.project).dependencies).filter((d) => typeof d === "string") as string[]).join("\n"));
}

/** A path the build options name inside the source: relative, no `..`, no link on the way. */
async function checkedRelative(sourceDir: string, relative: string, option: string): Promise<string> {
  const normalized = path.normalize(relative);
  if (path.isAbsolute(relative) || normalized === ".." || normalized.startsWith("../")) {
    throw new BuildFailure(`${option} must be a path inside the source, like requirements/prod.txt (it is ${relative})`);
  }
  let dir = sourceDir;
  for (const part of path.dirname(normalized).split("/").filter((p) => p && p !== ".")) {
    dir = path.join(dir, part);
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new BuildFailure(`${option} is ${relative}, which is not a file in the source`);
  }
  return normalized;
}

const isFile = (file: string) => lstat(file).then((info) => info.isFile(), () => false);

/** PEP 503 names: lowercase, runs of -_. as one -. */
export const normalizeName = (name: string) => name.trim().toLowerCase().replace(/[-_.]+/g, "-");

const table = (value: unknown): Record<string, unknown> => (value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
const array = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
