import { execFile } from "node:child_process";
import { realpathSync } from "node:fs";
import path from "node:path";

/** What a sandbox always gets read-only: the operating system's own files. */
export const SYSTEM_DIRS = ["/usr", "/etc"] as const;
/** Top-level names that are symlinks into /usr on merged-/usr systems, directories elsewhere. */
export const SYSTEM_ALIASES = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] as const;
/** The PATH a sandboxed command starts from, before toolchain and venv directories. */
export const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const PYTHON_NAMES = ["python3", ...Array.from({ length: 8 }, (_, i) => `python3.${8 + i}`)];

const insideSystem = (dir: string) => SYSTEM_DIRS.some((system) => dir === system || dir.startsWith(`${system}/`));

function basePrefix(command: string): Promise<string | undefined> {
  return new Promise((resolve) =>
    execFile(command, ["-c", "import sys; print(sys.base_prefix)"], { timeout: 10_000 }, (error, stdout) => resolve(error ? undefined : stdout.trim())),
  );
}

let found: Promise<string[]> | undefined;

/**
 * Language toolchains installed outside the system directories (pyenv's interpreters, a Node
 * unpacked under /opt): a sandbox binds each read-only at its own path, because virtualenvs and
 * npm scripts name their interpreter by absolute path. Only the interpreters' own prefixes are
 * bound, never the directories around them (a home directory may hold credentials).
 */
export function hostToolchains(): Promise<string[]> {
  found ??= (async () => {
    const prefixes = new Set<string>();
    for (const prefix of await Promise.all(PYTHON_NAMES.map(basePrefix))) if (prefix) prefixes.add(realpathSync(prefix));
    prefixes.add(path.dirname(path.dirname(realpathSync(process.execPath))));
    return [...prefixes].filter((dir) => !insideSystem(dir)).sort();
  })();
  return found;
}

/** The PATH inside a sandbox: each toolchain's `bin`, then the system's. */
export function sandboxPath(toolchains: string[]): string {
  return [...toolchains.map((dir) => path.join(dir, "bin")), SYSTEM_PATH].join(":");
}

/**
 * The whole environment a sandboxed command starts from: the sandbox's PATH and a HOME it may
 * write, the host's locale, and nothing else of the platform's (its secrets live in its own env).
 */
export function sandboxEnvironment(sandbox: { path: string; home: string }, host: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return { PATH: sandbox.path, HOME: sandbox.home, LANG: host.LANG ?? "C.UTF-8" };
}
