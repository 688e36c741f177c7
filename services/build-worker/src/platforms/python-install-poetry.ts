import { lstat } from "node:fs/promises";
import path from "node:path";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";
import { array, normalizeName, parseTomlFile, pythonTool, table, type InstallTarget, type Plan, type Pyproject } from "./python-install-common";
import { defaultPython } from "./python-versions";

export const POETRY_VERSION = "2.5.1";
export const POETRY_PLUGIN_EXPORT_VERSION = "1.10.1";

/** poetry.lock: Poetry exports the locked main dependencies; pip installs them, then the project when it is a package. */
export function poetryPlan(ctx: PlatformContext, target: InstallTarget, pyproject: Pyproject, lock: string): Plan {
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
  const packages = array(parseTomlFile(lock, "poetry.lock").package) as Record<string, unknown>[];
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
