import { execFile } from "node:child_process";
import { realpathSync } from "node:fs";
import { access, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { SYSTEM_DIRS } from "./toolchains";

/** A Python interpreter on this host, as it describes itself when run. */
export interface PythonInterpreter {
  /** Absolute path of the executable to run (what a venv made with it points at). */
  command: string;
  /** `platform.python_version()`: "3.11.7". */
  version: string;
  /** `sys.base_prefix`, as the interpreter computes it. */
  prefix: string;
  /**
   * What a sandbox must bind read-only to run it: its prefix, and that prefix's real path when it
   * is reached through a link (a pyenv version linked into an installs directory), never a system
   * directory (always bound) nor anything around the prefix.
   */
  mounts: string[];
}

/** The interpreter names looked up on a PATH: `python3` (the default) first. */
export const PYTHON_COMMAND_NAMES = ["python3", ...Array.from({ length: 11 }, (_, i) => `python3.${6 + i}`)];

const PROBE = "import json, platform, sys; print(json.dumps([sys.executable, platform.python_version(), sys.base_prefix]))";

const insideAny = (file: string, dirs: readonly string[]) => dirs.some((dir) => file === dir || file.startsWith(`${dir}/`));

/**
 * Runs `command` (a name looked up on `env.PATH`, or a path) once and answers what it is, or
 * undefined when it does not run as a Python 3 (a pyenv shim for a version that is not selected
 * fails here). `-I` keeps PYTHONHOME, PYTHONPATH and user site-packages out of the answer.
 */
export function probePython(command: string, env: NodeJS.ProcessEnv = process.env): Promise<PythonInterpreter | undefined> {
  return new Promise((resolve) =>
    execFile(command, ["-I", "-c", PROBE], { env, timeout: 15_000 }, (error, stdout) => {
      if (error) return resolve(undefined);
      try {
        const [executable, version, prefix] = JSON.parse(stdout.trim().split("\n").at(-1)!) as [string, string, string];
        if (!/^3\.\d+\.\d+/.test(version) || !path.isAbsolute(prefix)) return resolve(undefined);
        resolve(interpreterAt(executable || command, version, prefix));
      } catch {
        resolve(undefined);
      }
    }),
  );
}

function interpreterAt(executable: string, version: string, prefix: string): PythonInterpreter | undefined {
  if (!path.isAbsolute(executable)) return undefined;
  let realPrefix: string;
  try {
    realPrefix = realpathSync(prefix);
  } catch {
    return undefined;
  }
  const mounts = [...new Set([prefix, realPrefix])].filter((dir) => !insideAny(dir, SYSTEM_DIRS));
  // An executable outside what gets bound (a link in ~/bin) is named by its real path instead.
  let command = executable;
  if (!insideAny(command, [...mounts, ...SYSTEM_DIRS, "/bin", "/sbin", "/lib", "/lib64"])) {
    try {
      command = realpathSync(executable);
    } catch {
      return undefined;
    }
  }
  return { command, version, prefix, mounts };
}

export interface FoundPythons {
  /** Every distinct version found, in the order found: the PATH's, then the install directories'. */
  pythons: PythonInterpreter[];
  /** What `python3` on the PATH is. */
  default?: PythonInterpreter;
}

/**
 * Where interpreters beside the host's own are installed, searched after the PATH: the
 * operator's `installsDir` first, then pyenv's versions (`$PYENV_ROOT`, else `~/.pyenv`), uv's
 * managed Pythons (`$UV_PYTHON_INSTALL_DIR`, else `$XDG_DATA_HOME/uv/python`) and Oryx's
 * `/opt/python/<version>`, each holding `<name>/bin/python3`.
 */
export function pythonInstallDirs(env: NodeJS.ProcessEnv, installsDir?: string): string[] {
  const home = env.HOME || os.homedir();
  const dataHome = env.XDG_DATA_HOME || path.join(home, ".local", "share");
  return [
    ...(installsDir ? [installsDir] : []),
    path.join(env.PYENV_ROOT || path.join(home, ".pyenv"), "versions"),
    env.UV_PYTHON_INSTALL_DIR || path.join(dataHome, "uv", "python"),
    "/opt/python",
  ];
}

/**
 * The interpreters a host offers: `python3` and `python3.X` on the PATH of `env`, then each
 * `<dir>/*\/bin/python3` of the install directories (see pythonInstallDirs). The first of each
 * version wins. Each candidate is run once: names can lie (shims).
 */
export async function findPythons(options: { env?: NodeJS.ProcessEnv; installsDir?: string } = {}): Promise<FoundPythons> {
  const env = options.env ?? process.env;
  const candidates: string[] = [...PYTHON_COMMAND_NAMES];
  for (const dir of pythonInstallDirs(env, options.installsDir)) {
    const entries = (await readdir(dir).catch(() => [] as string[])).filter((name) => !name.startsWith(".")).sort();
    for (const name of entries) {
      const executable = path.join(dir, name, "bin", "python3");
      if (await access(executable).then(() => true, () => false)) candidates.push(executable);
    }
  }
  const probed = await Promise.all(candidates.map((command) => probePython(command, env)));
  const byVersion = new Map<string, PythonInterpreter>();
  for (const found of probed) if (found && !byVersion.has(found.version)) byVersion.set(found.version, found);
  return { pythons: [...byVersion.values()], ...(probed[0] ? { default: probed[0] } : {}) };
}

/** Numeric parts of a version ("3.13.0rc1" → [3, 13, 0]), for ordering. */
export function versionParts(version: string): number[] {
  return version.split(".").map((part) => Number.parseInt(part, 10)).map((n) => (Number.isNaN(n) ? 0 : n));
}

/** Orders versions oldest first; a pre-release ("3.13.0rc1") comes before its release. */
export function compareVersions(a: string, b: string): number {
  const [pa, pb] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  const pre = (v: string) => /\d(a|b|rc)\d*$/.test(v);
  return Number(!pre(a)) - Number(!pre(b));
}
