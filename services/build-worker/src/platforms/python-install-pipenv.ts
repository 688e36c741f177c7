import path from "node:path";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import { BuildFailure } from "../errors";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";
import { normalizeName, pythonTool, table, type InstallTarget, type Plan } from "./python-install-common";
import { defaultPython } from "./python-versions";

export const PIPENV_VERSION = "2026.10.3";

/** Pipfile.lock: Pipenv checks the lock against the Pipfile and exports it; pip installs it. */
export function pipenvPlan(ctx: PlatformContext, target: InstallTarget, lock: string): Plan {
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
