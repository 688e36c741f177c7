import path from "node:path";
import { readUntrustedText } from "@slipway/shared";
import { compareVersions, findPythons, type FoundPythons, type PythonInterpreter } from "@slipway/shared/sandbox";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "./platform";

export type { PythonInterpreter };

/** What a build asked for, and where it said so. */
export interface RequestedVersion {
  version: string;
  source: string;
}

const discovered = new Map<string, Promise<FoundPythons>>();

/**
 * The interpreters this worker can build with: `python3` and `python3.X` on the worker's own
 * PATH, then each `<installsDir>/*\/bin/python3`. Found once per process and installs directory.
 * Only the worker's own environment is used to find and run them, never a build's (whose options
 * could otherwise choose what the worker runs outside any sandbox).
 */
export function availablePythons(installsDir?: string): Promise<FoundPythons> {
  const key = installsDir ?? "";
  let found = discovered.get(key);
  if (!found) {
    found = findPythons({ env: process.env, ...(installsDir ? { installsDir } : {}) });
    discovered.set(key, found);
  }
  return found;
}

/** `python-3.11` (runtime.txt), `3.11` (PYTHON_VERSION, .python-version) → "3.11". */
export function parseRequestedVersion(text: string): string | undefined {
  const match = /^(?:python-?)?(\d+(?:\.\d+){0,2})\s*$/i.exec(text.trim());
  return match?.[1];
}

/** The newest interpreter whose version starts with `requested` ("3" , "3.13", "3.13.1"). */
export function matchPython(pythons: PythonInterpreter[], requested: string): PythonInterpreter | undefined {
  return pythons
    .filter((p) => p.version === requested || p.version.startsWith(`${requested}.`))
    .sort((a, b) => compareVersions(b.version, a.version))[0];
}

/** The interpreter for a request, or the worker's `python3` when there is none; fails naming what exists. */
export function selectPython(found: FoundPythons, requested: RequestedVersion | undefined): PythonInterpreter {
  if (found.pythons.length === 0) throw new BuildFailure("this worker has no working python3");
  if (!requested) return found.default ?? found.pythons[0]!;
  const match = matchPython(found.pythons, requested.version);
  if (!match) {
    const versions = found.pythons.map((p) => p.version).sort(compareVersions);
    throw new BuildFailure(`Python ${requested.version} was requested (${requested.source}) but this worker has ${versions.join(", ")}`);
  }
  return match;
}

/**
 * The version a build asks for: the PYTHON_VERSION build option, else runtime.txt (Oryx's and
 * Heroku's classic file), else .python-version (pyenv's, uv's, Heroku's current one).
 */
export async function requestedVersion(sourceDir: string, options: Record<string, string>): Promise<RequestedVersion | undefined> {
  const fromOption = options.PYTHON_VERSION;
  if (fromOption) {
    const version = parseRequestedVersion(fromOption);
    if (!version) throw new BuildFailure(`PYTHON_VERSION "${fromOption}" is not a version like 3.11`);
    return { version, source: "PYTHON_VERSION" };
  }
  // PRE_BUILD_COMMAND has run by now: the tree is the build's, so no links out and no FIFOs.
  const runtimeTxt = await readUntrustedText(path.join(sourceDir, "runtime.txt"));
  if (runtimeTxt?.trim()) {
    const version = parseRequestedVersion(runtimeTxt);
    if (!version) throw new BuildFailure(`runtime.txt says "${runtimeTxt.trim()}"; expected python-<version>, like python-3.11`);
    return { version, source: "runtime.txt" };
  }
  const pythonVersion = await readUntrustedText(path.join(sourceDir, ".python-version"));
  // pyenv allows several lines (the first is the project's) and comments.
  const first = pythonVersion
    ?.split("\n")
    .map((line) => line.replace(/#.*/, "").trim())
    .find(Boolean);
  if (first) {
    const version = parseRequestedVersion(first);
    if (!version) throw new BuildFailure(`.python-version says "${first}"; expected a version like 3.13 or 3.13.1`);
    return { version, source: ".python-version" };
  }
  return undefined;
}

/**
 * Chooses the build's interpreter, says so in the log, and makes it runnable inside the build's
 * sandbox (its prefix bound read-only: an installs directory is not among the host toolchains).
 */
export async function choosePython(ctx: PlatformContext): Promise<PythonInterpreter> {
  const requested = await requestedVersion(ctx.sourceDir, ctx.options);
  const interpreter = selectPython(await availablePythons(ctx.toolchains.pythonInstallsDir), requested);
  for (const dir of interpreter.mounts) ctx.allowReading(dir);
  ctx.log(`Using Python ${interpreter.version} (${interpreter.command})${requested ? ` for ${requested.source} ${requested.version}` : ""}`);
  return interpreter;
}

/** The worker's default interpreter (its `python3`), which runs the installer tools; bound into the build too. */
export async function defaultPython(ctx: PlatformContext): Promise<PythonInterpreter> {
  const interpreter = selectPython(await availablePythons(ctx.toolchains.pythonInstallsDir), undefined);
  for (const dir of interpreter.mounts) ctx.allowReading(dir);
  return interpreter;
}
