/**
 * How a Python app's dependencies get into its virtualenv, by what the source carries:
 *
 * 1. `CUSTOM_REQUIREMENTSTXT_PATH` (build option), else `requirements.txt` (which wins over lock
 *    files beside it, as in Oryx): uv (`uv pip install -r`), faster than pip on the same file.
 *    pip when `PYTHON_INSTALLER=pip`, and whenever uv fails (a pip-only option uv rejects, or
 *    anything else): the venv is re-created and pip installs, the log says why.
 * 2. `uv.lock`: uv (`uv sync --locked` into the venv).
 * 3. `poetry.lock`: Poetry exports the locked main dependencies; pip installs them.
 * 4. `Pipfile.lock`: Pipenv checks the lock against the Pipfile and exports it; pip installs it.
 * 5. `pyproject.toml` or `setup.py` without any of those: `pip install .`.
 *
 * The venv is always made by `python -m venv`, so pip is in it whichever installer ran (the
 * runtime and later steps use it; a uv install puts the interpreter's bundled pip in with uv).
 * uv, Poetry and Pipenv come from the package index into the worker's tool cache (versions
 * pinned here), never into the app's venv. Whatever installs from a lock or requirements file
 * caches the venv keyed by that file's text and by the installer; the project itself, when it is
 * a package, is installed after that (never cached: its source changes without its lock
 * changing), and never editable (an editable install points at the build directory, which the
 * runtime does not have).
 */

import path from "node:path";
import { isFile, readAppText } from "./fs-checks";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "./platform";
import { createVenv, readLock, readPyproject, type InstallTarget, type Plan } from "./python-install-common";
import { projectPlan } from "./python-install-pip";
import { pipenvPlan } from "./python-install-pipenv";
import { customRequirementsPlan, requirementsInstaller, requirementsPlan } from "./python-install-requirements";
import { poetryPlan } from "./python-install-poetry";
import { uvPlan } from "./python-install-uv";

export { requirementNames } from "./python-install-pip";
export { PIPENV_VERSION, pipenvTool, pipfileLockPackages } from "./python-install-pipenv";
export { POETRY_VERSION, poetryLockPackages, poetryTool } from "./python-install-poetry";
export { UV_VERSION, uvIsPackage, uvLockPackages, uvTool } from "./python-install-uv";

export interface InstallOutcome {
  /** "pip", "uv", "Poetry", "Pipenv", or "none". */
  installer: string;
  /** Normalized names of the packages the app depends on (frameworks are detected from them). */
  packages: string[];
}

/** Creates the venv and installs into it what the source asks for, through the dependency cache. */
export async function installDependencies(ctx: PlatformContext, target: InstallTarget): Promise<InstallOutcome> {
  const plan = await planInstall(ctx, target);
  const key = plan.inputs && { layer: target.venvName, inputs: { python: target.python.version, interpreter: target.python.command, ...plan.inputs } };
  if (key && (await ctx.cache.restore(key, target.venv))) {
    ctx.log(`Skipping venv creation and ${plan.installer} install: dependencies restored from the cache`);
    await plan.verify?.();
  } else {
    if (!plan.makesVenv) await createVenv(ctx, target);
    await plan.dependencies();
    await target.beforeCacheSave?.();
    if (key) await ctx.cache.save(key, target.venv);
  }
  await plan.project?.();
  return { installer: plan.installer, packages: plan.packages };
}

/** Which installer the source asks for, and how it installs; nothing is run yet. */
export async function planInstall(ctx: PlatformContext, target: InstallTarget): Promise<Plan> {
  const dir = ctx.sourceDir;
  // A mistyped PYTHON_INSTALLER fails every build, not only those it would have changed.
  requirementsInstaller(ctx.options);
  const custom = ctx.options.CUSTOM_REQUIREMENTSTXT_PATH;
  if (custom) return customRequirementsPlan(ctx, target, custom);
  const locks: string[] = [];
  for (const lock of ["uv.lock", "poetry.lock", "Pipfile.lock"]) if (await isFile(path.join(dir, lock))) locks.push(lock);
  const requirements = await readAppText(dir, "requirements.txt");
  if (requirements !== undefined) {
    if (locks.length) ctx.log(`Found requirements.txt and ${locks.join(", ")}: installing from requirements.txt, as Oryx does (without it, ${locks[0]} would be used)`);
    return requirementsPlan(ctx, target, "requirements.txt", requirements);
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
  const project = await projectPlan(ctx, target);
  if (project) return project;
  return {
    installer: "none",
    packages: [],
    dependencies: async () => ctx.log("No requirements.txt, lock file, pyproject.toml or setup.py: nothing to install."),
  };
}

