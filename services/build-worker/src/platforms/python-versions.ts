import { execFile } from "node:child_process";
import { BuildFailure } from "../errors";

export interface PythonInterpreter {
  command: string;
  version: string;
}

const CANDIDATES = ["python3", ...Array.from({ length: 8 }, (_, i) => `python3.${8 + i}`)];

function versionOf(command: string, env: Record<string, string>): Promise<string | undefined> {
  return new Promise((resolve) =>
    execFile(command, ["-c", "import platform; print(platform.python_version())"], { env, timeout: 10_000 }, (error, stdout) =>
      resolve(error ? undefined : stdout.trim()),
    ),
  );
}

let discovered: Promise<PythonInterpreter[]> | undefined;

/** The Python interpreters this worker can build with (each actually run once: shims may lie). */
export function availablePythons(env: Record<string, string>): Promise<PythonInterpreter[]> {
  discovered ??= Promise.all(CANDIDATES.map(async (command) => ({ command, version: await versionOf(command, env) }))).then((found) => {
    const byVersion = new Map<string, PythonInterpreter>();
    for (const { command, version } of found) if (version && !byVersion.has(version)) byVersion.set(version, { command, version });
    return [...byVersion.values()];
  });
  return discovered;
}

/** `python-3.11` (runtime.txt) or `3.11` (PYTHON_VERSION) → "3.11". */
export function parseRequestedVersion(text: string): string | undefined {
  const match = /^(?:python-)?(\d+(?:\.\d+){0,2})\s*$/i.exec(text.trim());
  return match?.[1];
}

/**
 * Picks the interpreter for a requested version (a prefix: "3", "3.11", "3.11.7"), or the
 * worker's default `python3` when none is requested.
 */
export async function selectPython(requested: string | undefined, source: string, env: Record<string, string>): Promise<PythonInterpreter> {
  const pythons = await availablePythons(env);
  if (pythons.length === 0) throw new BuildFailure("this worker has no working python3");
  if (!requested) return pythons.find((p) => p.command === "python3") ?? pythons[0]!;
  const match = pythons.find((p) => p.version === requested || p.version.startsWith(`${requested}.`));
  if (!match) {
    throw new BuildFailure(`Python ${requested} was requested (${source}) but this worker has ${pythons.map((p) => p.version).join(", ")}`);
  }
  return match;
}
