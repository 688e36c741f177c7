import path from "node:path";
import { lstat } from "node:fs/promises";
import { readUntrustedText } from "@slipway/shared";
import { isFile } from "./fs-checks";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "./platform";
import { array, normalizeName, parsePyproject, table, type InstallTarget, type Plan, type Pyproject } from "./python-install-common";

/** pip from the file CUSTOM_REQUIREMENTSTXT_PATH names, inside the source. */
export async function customRequirementsPlan(ctx: PlatformContext, target: InstallTarget, custom: string): Promise<Plan> {
  const file = await checkedRelative(ctx.sourceDir, custom, "CUSTOM_REQUIREMENTSTXT_PATH");
  const text = await readUntrustedText(path.join(ctx.sourceDir, file));
  if (text === undefined) throw new BuildFailure(`CUSTOM_REQUIREMENTSTXT_PATH is ${custom}, which is not a file in the source`);
  return pipPlan(ctx, target, file, text);
}

export function pipPlan(ctx: PlatformContext, target: InstallTarget, file: string, text: string): Plan {
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
