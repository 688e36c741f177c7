import { readdir } from "node:fs/promises";
import path from "node:path";
import type { Platform, PlatformContext, PlatformResult } from "./platform";
import { collectStatic } from "./python-collectstatic";
import { installDependencies } from "./python-installers";
import { preparePythonStart } from "./python-server";
import { choosePython } from "./python-versions";
import { exists } from "./fs-checks";

export { requirementNames } from "./python-installers";

/** Oryx's name for the virtualenv, which the runtime activates. */
export const VIRTUAL_ENV_NAME = "antenv";

const FRAMEWORKS: [pkg: string, label: string][] = [
  ["flask", "Flask"],
  ["django", "Django"],
  ["fastapi", "FastAPI"],
];

export const python: Platform = {
  name: "python",

  async detect(sourceDir) {
    for (const marker of ["requirements.txt", "pyproject.toml", "setup.py", "Pipfile", "runtime.txt"]) {
      if (await exists(path.join(sourceDir, marker))) return "strong";
    }
    return (await readdir(sourceDir)).some((name) => name.endsWith(".py")) ? "weak" : false;
  },

  async build(ctx: PlatformContext): Promise<PlatformResult> {
    const interpreter = await choosePython(ctx);

    const venv = path.join(ctx.sourceDir, VIRTUAL_ENV_NAME);
    const venvPython = path.join(venv, "bin", "python");
    const env = {
      ...ctx.baseEnv,
      VIRTUAL_ENV: venv,
      PATH: `${path.join(venv, "bin")}:${ctx.baseEnv.PATH}`,
      PIP_DISABLE_PIP_VERSION_CHECK: "1",
      PIP_NO_INPUT: "1",
      PYTHONUNBUFFERED: "1",
    };
    // The start command is chosen (and a missing server installed) before the venv is cached, so
    // that a cache hit already has the server.
    let startupCommand: string | undefined;
    let startPrepared = false;
    const prepareStart = async () => {
      startupCommand = await preparePythonStart(ctx, { venvName: VIRTUAL_ENV_NAME, venvPython, env });
      startPrepared = true;
    };
    const installed = await installDependencies(ctx, { python: interpreter, venvName: VIRTUAL_ENV_NAME, venv, env, beforeCacheSave: prepareStart });
    if (!startPrepared) await prepareStart();

    const names = new Set(installed.packages);
    const frameworks = FRAMEWORKS.filter(([pkg]) => names.has(pkg)).map(([, label]) => label);
    await ctx.phase("framework steps", () => collectStatic(ctx, { django: frameworks.includes("Django"), venv, venvPython, env }));
    return {
      name: "python",
      version: interpreter.version,
      manifest: { pythonVersion: interpreter.version, pythonInterpreterPath: interpreter.command, virtualEnvName: VIRTUAL_ENV_NAME },
      frameworks,
      ...(startupCommand ? { startupCommand } : {}),
    };
  },
};
