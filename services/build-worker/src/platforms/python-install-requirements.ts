import path from "node:path";
import { lstat, readdir } from "node:fs/promises";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "./platform";
import { createVenv, type InstallTarget, type Plan } from "./python-install-common";
import { pipPlan, requirementNames, requirementsInputs } from "./python-install-pip";
import { noIndex, UV_VERSION, uvBinary, uvEnvironment } from "./python-install-uv";

/** The installers PYTHON_INSTALLER names; uv unless it says pip. */
const INSTALLERS = ["uv", "pip"] as const;
type RequirementsInstaller = (typeof INSTALLERS)[number];

/** The requirements file CUSTOM_REQUIREMENTSTXT_PATH names, inside the source. */
export async function customRequirementsPlan(ctx: PlatformContext, target: InstallTarget, custom: string): Promise<Plan> {
  const file = await checkedRelative(ctx.sourceDir, custom, "CUSTOM_REQUIREMENTSTXT_PATH");
  const text = await readUntrustedText(path.join(ctx.sourceDir, file));
  if (text === undefined) throw new BuildFailure(`CUSTOM_REQUIREMENTSTXT_PATH is ${custom}, which is not a file in the source`);
  return requirementsPlan(ctx, target, file, text);
}

/** A requirements file, installed by the installer PYTHON_INSTALLER picks (uv unless it says pip). */
export function requirementsPlan(ctx: PlatformContext, target: InstallTarget, file: string, text: string): Plan {
  return requirementsInstaller(ctx.options) === "pip" ? pipPlan(ctx, target, file, text) : uvRequirementsPlan(ctx, target, file, text);
}

export function requirementsInstaller(options: Record<string, string>): RequirementsInstaller {
  const asked = options.PYTHON_INSTALLER?.trim().toLowerCase();
  if (!asked) return "uv";
  if ((INSTALLERS as readonly string[]).includes(asked)) return asked as RequirementsInstaller;
  throw new BuildFailure(`PYTHON_INSTALLER must be ${INSTALLERS.join(" or ")} (it is ${JSON.stringify(options.PYTHON_INSTALLER)})`);
}

/**
 * `uv pip install -r` into the venv `python -m venv` made (so pip stays in it). Whatever uv cannot
 * do (a pip-only option in the file, a requirement it rejects, or no resolution at all) goes to
 * pip in a re-created venv, so a build never fails where pip alone would have succeeded, and a
 * failing build fails with pip's words, which users of Oryx know.
 */
function uvRequirementsPlan(ctx: PlatformContext, target: InstallTarget, file: string, text: string): Plan {
  const uv = uvBinary(ctx);
  const fallback = pipPlan(ctx, target, file, text);
  const venvPython = path.join(target.venv, "bin", "python");
  const args = ["pip", "install", "-r", file, "--python", venvPython, ...(noIndex(target.env) ? ["--no-index"] : [])];
  return {
    installer: "uv",
    // The procedure, not only the tool: the same file falls back the same way every time, so
    // its pip-made venv is what this key always produces; PYTHON_INSTALLER=pip keys apart.
    // The seed too: venvs cached before it held setuptools lacked it.
    inputs: { ...requirementsInputs(file, text), installer: `uv ${UV_VERSION}, else pip`, seed: "ensurepip's bundled wheels" },
    packages: requirementNames(text),
    makesVenv: true,
    dependencies: async () => {
      const complaint = uvComplaint();
      try {
        // Inside the fallback too: a worker that cannot fetch uv (offline, a local wheelhouse) still builds.
        const command = await uv();
        await seededVenv(ctx, target, command);
        // "pip install" as in Oryx's line, which users search their logs for; "uv" says what ran it.
        ctx.log(`Running pip install -r ${file} ... with uv ${UV_VERSION} (uv pip install; PYTHON_INSTALLER=pip runs pip itself)`);
        await ctx.run(command, args, { env: uvEnvironment(target), label: `uv pip install -r ${file}`, watch: complaint.watch });
      } catch (error) {
        if (!(error instanceof BuildFailure)) throw error;
        ctx.log(`uv could not install ${file} (${complaint.reason() ?? error.message}): using pip instead, in a fresh ${target.venvName}`);
        await createVenv(ctx, target, true);
        await fallback.dependencies();
      }
    },
  };
}

/**
 * The venv `python -m venv` makes, with what ensurepip would seed it with (pip; setuptools too
 * before Python 3.12, which apps importing `pkg_resources`, like gunicorn 20, need), those very
 * bundled wheels installed by uv: ensurepip runs pip to install pip and compiles it, which takes
 * longer than uv's whole install of a Django app. Plain `python -m venv` when the interpreter
 * bundles no pip wheel (a distribution's Python that stripped ensurepip).
 */
async function seededVenv(ctx: PlatformContext, target: InstallTarget, uv: string): Promise<void> {
  const wheels = await bundledWheels(target.python);
  if (!wheels.some((wheel) => path.basename(wheel).startsWith("pip-"))) return createVenv(ctx, target);
  ctx.log(`Creating virtual environment ${target.venvName} (python -m venv --without-pip, then its bundled ${wheels.map((wheel) => path.basename(wheel)).join(", ")} through uv) ...`);
  await ctx.run(target.python.command, ["-m", "venv", "--without-pip", target.venvName], { label: "python -m venv" });
  const venvPython = path.join(target.venv, "bin", "python");
  // pip's own 800 modules are not compiled ahead (three quarters of this step's time): the app
  // never imports pip, and a build command running it compiles what it imports then.
  const { UV_COMPILE_BYTECODE: _compiled, ...environment } = uvEnvironment(target);
  await ctx.run(uv, ["pip", "install", "--quiet", "--python", venvPython, "--no-index", ...wheels], { env: environment, label: "uv pip install pip" });
}

/** `<prefix>/lib/pythonX.Y/ensurepip/_bundled/*.whl`: what `python -m venv` seeds a venv with. */
async function bundledWheels(python: InstallTarget["python"]): Promise<string[]> {
  const minor = python.version.split(".").slice(0, 2).join(".");
  const bundled = path.join(python.prefix, "lib", `python${minor}`, "ensurepip", "_bundled");
  return (await readdir(bundled).catch(() => [] as string[]))
    .filter((name) => name.endsWith(".whl"))
    .sort()
    .map((name) => path.join(bundled, name));
}

/** uv's reason for failing, from its output: its `error:` or `×` line and the few lines under it. */
function uvComplaint() {
  const lines: string[] = [];
  return {
    watch: (line: string) => {
      if (lines.length === 0 && !/^\s*(error:|×)/.test(line)) return;
      if (lines.length < 4) lines.push(line.trim().replace(/^[×╰─▶\s]+/, ""));
    },
    reason: () => (lines.length ? lines.join(" ") : undefined),
  };
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
