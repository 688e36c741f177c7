import path from "node:path";
import { readUntrustedText } from "@slipway/shared";
import { isFile } from "./fs-checks";
import type { PlatformContext } from "./platform";
import { array, normalizeName, parsePyproject, table, type InstallTarget, type Plan, type Pyproject } from "./python-install-common";

/** `pip install -r` of a requirements file: PYTHON_INSTALLER=pip, and what a failing uv falls back to. */
export function pipPlan(ctx: PlatformContext, target: InstallTarget, file: string, text: string): Plan {
  const venvPython = path.join(target.venv, "bin", "python");
  return {
    installer: "pip",
    inputs: { ...requirementsInputs(file, text), installer: "pip" },
    packages: requirementNames(text),
    dependencies: async () => {
      ctx.log(`Running pip install -r ${file} ...`);
      await ctx.run(venvPython, ["-m", "pip", "install", "-r", file], { env: target.env, label: `pip install -r ${file}` });
    },
  };
}

/** What decides a requirements install besides the installer: the file's text, and which file. */
export const requirementsInputs = (file: string, text: string): Record<string, string> =>
  file === "requirements.txt" ? { requirements: text } : { requirements: text, requirementsFile: file };

/** Requirement names, normalized, from a requirements file (comments, options and versions dropped). */
export function requirementNames(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line && !line.startsWith("-"))
    .map((line) => normalizeName(line.split(/[<>=!~;[\s@]/)[0]!))
    .filter(Boolean);
}

/** `pip install .` for a pyproject.toml or setup.py without a requirements or lock file; undefined without either. */
export async function projectPlan(ctx: PlatformContext, target: InstallTarget): Promise<Plan | undefined> {
  const pyprojectText = await readUntrustedText(path.join(ctx.sourceDir, "pyproject.toml"));
  if (pyprojectText === undefined && !(await isFile(path.join(ctx.sourceDir, "setup.py")))) return undefined;
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

/** PEP 621 `[project] dependencies`, by name. */
function projectDependencyNames(pyproject: Pyproject): string[] {
  return requirementNames((array(table(pyproject.project).dependencies).filter((d) => typeof d === "string") as string[]).join("\n"));
}
