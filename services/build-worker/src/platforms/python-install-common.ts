import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { readUntrustedText } from "@slipway/shared";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import { BuildFailure } from "../errors";
import type { ToolSpec } from "../tools";
import type { PlatformContext } from "./platform";

/** Lock files larger than this fail the build rather than being read in part. */
const MAX_LOCK_BYTES = 16 * 1024 * 1024;

export interface InstallTarget {
  python: PythonInterpreter;
  /** The venv's directory name in the source ("antenv") and its absolute path. */
  venvName: string;
  venv: string;
  /** The build's environment with the venv active. */
  env: Record<string, string>;
  /**
   * Runs on a fresh install just before the venv is saved to the dependency cache: what it adds to
   * the venv (the server the app needs) is cached with the dependencies, not reinstalled on a hit.
   */
  beforeCacheSave?: () => Promise<void>;
}

/** How one installer puts the dependencies into the venv: chosen first, run through the dependency cache. */
export interface Plan {
  installer: string;
  /** The cache key's inputs beyond the interpreter: the lock or requirements text, and the installer's version. */
  inputs?: Record<string, string>;
  packages: string[];
  /** Installs the dependencies into the (new, empty) venv. */
  dependencies(): Promise<void>;
  /** dependencies() makes the venv itself (uv seeds pip into it faster than ensurepip). */
  makesVenv?: boolean;
  /**
   * With the venv from the cache instead: checks what the install would have (the lock still
   * matches its pyproject.toml or Pipfile), since the cache is keyed by the lock alone.
   */
  verify?(): Promise<void>;
  /** Installs the project itself, after the dependencies came from the install or from the cache. */
  project?(): Promise<void>;
}

/** `python -m venv` (pip included: the runtime and later steps use it); `fresh` empties an existing one first. */
export async function createVenv(ctx: PlatformContext, target: InstallTarget, fresh = false): Promise<void> {
  ctx.log(`${fresh ? "Re-creating" : "Creating"} virtual environment ${target.venvName} ...`);
  await ctx.run(target.python.command, ["-m", "venv", ...(fresh ? ["--clear"] : []), target.venvName], { label: "python -m venv" });
}

/**
 * A tool that lives in a venv of its own in the tool cache, made with the worker's default
 * interpreter (part of its version: the venv needs that interpreter). Its console scripts name
 * the staging directory it was installed in, so it is run as `<dir>/bin/python -m <tool>`.
 * `pinned`: the sha256 digests (one per platform's wheel) the worker holds for a tool without
 * dependencies; pip then installs nothing else, and only a file with one of those digests, from
 * whatever index it is given (`--require-hashes`).
 */
export function pythonTool(name: string, version: string, base: PythonInterpreter, requirements: string[], pinned?: string[]): ToolSpec {
  return {
    name,
    version: `${version}-py${base.version}`,
    ...(pinned ? { identity: `pypi ${requirements.join(" ")} ${pinned.map((digest) => `sha256:${digest}`).join(" ")}` } : {}),
    install: async (dir, run, sandbox) => {
      for (const mount of base.mounts) sandbox.allowReading(mount);
      await run(base.command, ["-m", "venv", dir]);
      const pip = [path.join(dir, "bin", "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"];
      if (!pinned) return run(pip[0]!, [...pip.slice(1), ...requirements]);
      const file = path.join(dir, ".slipway-requirements.txt");
      await writeFile(file, requirements.map((requirement) => `${requirement} ${pinned.map((digest) => `--hash=sha256:${digest}`).join(" ")}\n`).join(""), { flag: "wx", mode: 0o644 });
      await run(pip[0]!, [...pip.slice(1), "--no-deps", "--require-hashes", "-r", file]);
      await rm(file);
    },
  };
}

export type Pyproject = Record<string, unknown>;

export async function readPyproject(dir: string, lock: string): Promise<Pyproject> {
  const text = await readUntrustedText(path.join(dir, "pyproject.toml"));
  if (text === undefined) throw new BuildFailure(`${lock} has no pyproject.toml beside it`);
  return parsePyproject(text);
}

export const parsePyproject = (text: string): Pyproject => parseTomlFile(text, "pyproject.toml");

/** A TOML file of the source, or a failure naming it and the first line of the parser's complaint. */
export function parseTomlFile(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (error) {
    throw new BuildFailure(`${file} does not parse: ${(error as Error).message.split("\n")[0]}`);
  }
}

/** A lock file's text, refused past MAX_LOCK_BYTES rather than read in part. */
export async function readLock(dir: string, file: string): Promise<string> {
  const text = await readUntrustedText(path.join(dir, file), MAX_LOCK_BYTES);
  if (text === undefined) throw new BuildFailure(`${file} is not a regular file`);
  if (Buffer.byteLength(text) >= MAX_LOCK_BYTES) throw new BuildFailure(`${file} is larger than ${MAX_LOCK_BYTES / 1024 / 1024} MiB`);
  return text;
}

/** PEP 503 names: lowercase, runs of -_. as one -. */
export const normalizeName = (name: string) => name.trim().toLowerCase().replace(/[-_.]+/g, "-");

/** A TOML/JSON table, or an empty one for anything else (the source is untrusted). */
export const table = (value: unknown): Record<string, unknown> => (value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {});
export const array = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
