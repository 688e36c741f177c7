import { execFile } from "node:child_process";
import { access, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { detectPythonStartCommand } from "@slipway/shared";
import type { Platform, PlatformContext, PlatformResult } from "./platform";

/** Oryx's name for the virtualenv, which the runtime activates. */
export const VIRTUAL_ENV_NAME = "antenv";

const exists = (file: string) => access(file).then(() => true, () => false);

async function readOptional(file: string): Promise<string> {
  return readFile(file, "utf8").catch(() => "");
}

/** Requirement names, lowercased, from a requirements.txt (comments, options and versions dropped). */
export function requirementNames(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line && !line.startsWith("-"))
    .map((line) => line.split(/[<>=!~;\[\s@]/)[0]!.toLowerCase().replace(/_/g, "-"))
    .filter(Boolean);
}

export const python: Platform = {
  name: "python",

  async detect(sourceDir) {
    for (const marker of ["requirements.txt", "pyproject.toml", "setup.py", "runtime.txt"]) {
      if (await exists(path.join(sourceDir, marker))) return true;
    }
    return (await readdir(sourceDir)).some((name) => name.endsWith(".py"));
  },

  async build(ctx: PlatformContext): Promise<PlatformResult> {
    const venv = path.join(ctx.sourceDir, VIRTUAL_ENV_NAME);
    const venvPython = path.join(venv, "bin", "python");
    ctx.log(`Creating virtual environment ${VIRTUAL_ENV_NAME} ...`);
    await ctx.run("python3", ["-m", "venv", VIRTUAL_ENV_NAME], { label: "python3 -m venv" });

    const env = {
      ...ctx.baseEnv,
      VIRTUAL_ENV: venv,
      PATH: `${path.join(venv, "bin")}:${ctx.baseEnv.PATH}`,
      PIP_DISABLE_PIP_VERSION_CHECK: "1",
      PIP_NO_INPUT: "1",
      PYTHONUNBUFFERED: "1",
    };
    const version = await pythonVersion(venvPython, env);
    ctx.log(`Python ${version}`);

    const requirementsFile = path.join(ctx.sourceDir, "requirements.txt");
    const requirements = await readOptional(requirementsFile);
    if (await exists(requirementsFile)) {
      ctx.log("Running pip install -r requirements.txt ...");
      await ctx.run(venvPython, ["-m", "pip", "install", "-r", "requirements.txt"], { env, label: "pip install -r requirements.txt" });
    } else {
      ctx.log("No requirements.txt: nothing to install.");
    }

    const names = new Set(requirementNames(requirements));
    const frameworks = [
      ["flask", "Flask"],
      ["django", "Django"],
      ["fastapi", "FastAPI"],
    ]
      .filter(([pkg]) => names.has(pkg!))
      .map(([, label]) => label!);
    // A Procfile is the app's own word on how to start: leave StartupCommand unset so the runtime reads it.
    const startupCommand = (await exists(path.join(ctx.sourceDir, "Procfile")))
      ? undefined
      : await detectPythonStartCommand(ctx.sourceDir, VIRTUAL_ENV_NAME);
    return {
      name: "python",
      version,
      manifest: { pythonVersion: version, virtualEnvName: VIRTUAL_ENV_NAME },
      frameworks,
      ...(startupCommand ? { startupCommand } : {}),
    };
  },
};

function pythonVersion(venvPython: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(venvPython, ["-c", "import platform; print(platform.python_version())"], { env }, (error, stdout) =>
      error ? reject(error) : resolve(stdout.trim()),
    ),
  );
}
