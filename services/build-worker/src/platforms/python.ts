import { access, readdir } from "node:fs/promises";
import path from "node:path";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import type { Platform, PlatformContext, PlatformResult } from "./platform";
import { collectStatic } from "./python-collectstatic";
import { preparePythonStart } from "./python-server";
import { parseRequestedVersion, selectPython } from "./python-versions";

/** Oryx's name for the virtualenv, which the runtime activates. */
export const VIRTUAL_ENV_NAME = "antenv";

const exists = (file: string) => access(file).then(() => true, () => false);
// PRE_BUILD_COMMAND has run by now: the tree is the build's, so no links out and no FIFOs.
const readOptional = (file: string) => readUntrustedText(file);

/** Requirement names, lowercased, from a requirements.txt (comments, options and versions dropped). */
export function requirementNames(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .filter((line) => line && !line.startsWith("-"))
    .map((line) => line.split(/[<>=!~;[\s@]/)[0]!.toLowerCase().replace(/_/g, "-"))
    .filter(Boolean);
}

const FRAMEWORKS: [pkg: string, label: string][] = [
  ["flask", "Flask"],
  ["django", "Django"],
  ["fastapi", "FastAPI"],
];

export const python: Platform = {
  name: "python",

  async detect(sourceDir) {
    for (const marker of ["requirements.txt", "pyproject.toml", "setup.py", "runtime.txt"]) {
      if (await exists(path.join(sourceDir, marker))) return "strong";
    }
    return (await readdir(sourceDir)).some((name) => name.endsWith(".py")) ? "weak" : false;
  },

  async build(ctx: PlatformContext): Promise<PlatformResult> {
    const requested = await requestedVersion(ctx);
    const interpreter = await selectPython(requested?.version, requested?.source ?? "", ctx.baseEnv);
    ctx.log(`Using Python ${interpreter.version} (${interpreter.command})${requested ? ` for ${requested.source}` : ""}`);

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
    const requirements = await readOptional(path.join(ctx.sourceDir, "requirements.txt"));
    // Only a requirements file pins what gets installed; `pip install .` installs the source itself.
    const cacheKey = requirements === undefined ? undefined : { layer: VIRTUAL_ENV_NAME, inputs: { python: interpreter.version, requirements } };
    if (cacheKey && (await ctx.cache.restore(cacheKey, venv))) {
      ctx.log("Skipping venv creation and pip install: dependencies restored from the cache");
    } else {
      ctx.log(`Creating virtual environment ${VIRTUAL_ENV_NAME} ...`);
      await ctx.run(interpreter.command, ["-m", "venv", VIRTUAL_ENV_NAME], { label: "python -m venv" });
      if (requirements !== undefined) {
        ctx.log("Running pip install -r requirements.txt ...");
        await ctx.run(venvPython, ["-m", "pip", "install", "-r", "requirements.txt"], { env, label: "pip install -r requirements.txt" });
        await ctx.cache.save(cacheKey!, venv);
      } else if ((await exists(path.join(ctx.sourceDir, "pyproject.toml"))) || (await exists(path.join(ctx.sourceDir, "setup.py")))) {
        ctx.log("No requirements.txt: running pip install . ...");
        await ctx.run(venvPython, ["-m", "pip", "install", "."], { env, label: "pip install ." });
      } else {
        ctx.log("No requirements.txt, pyproject.toml or setup.py: nothing to install.");
      }
    }

    const names = new Set(requirementNames(requirements ?? ""));
    const frameworks = FRAMEWORKS.filter(([pkg]) => names.has(pkg)).map(([, label]) => label);
    await collectStatic(ctx, { django: frameworks.includes("Django"), venv, venvPython, env });

    const startupCommand = await preparePythonStart(ctx, { venvName: VIRTUAL_ENV_NAME, venvPython, env });
    return {
      name: "python",
      version: interpreter.version,
      manifest: { pythonVersion: interpreter.version, virtualEnvName: VIRTUAL_ENV_NAME },
      frameworks,
      ...(startupCommand ? { startupCommand } : {}),
    };
  },
};

/** PYTHON_VERSION (build option) wins over runtime.txt, as in Oryx. */
async function requestedVersion(ctx: PlatformContext): Promise<{ version: string; source: string } | undefined> {
  const fromOption = ctx.options.PYTHON_VERSION;
  if (fromOption) {
    const version = parseRequestedVersion(fromOption);
    if (!version) throw new BuildFailure(`PYTHON_VERSION "${fromOption}" is not a version like 3.11`);
    return { version, source: "PYTHON_VERSION" };
  }
  const runtimeTxt = await readOptional(path.join(ctx.sourceDir, "runtime.txt"));
  if (runtimeTxt?.trim()) {
    const version = parseRequestedVersion(runtimeTxt);
    if (!version) throw new BuildFailure(`runtime.txt says "${runtimeTxt.trim()}"; expected python-<version>, like python-3.11`);
    return { version, source: "runtime.txt" };
  }
  return undefined;
}
