import { access, mkdir, readFile, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { replaceFile, type BuildManifest } from "@slipway/shared";
import { compareVersions, findPythons, probePython, type PythonInterpreter } from "@slipway/shared/sandbox";
import type { AppSandbox } from "./app-sandbox";
import { RestoreError } from "./restore";

const minor = (version: string) => version.split(".").slice(0, 2).join(".");
const exists = (file: string) => access(file).then(() => true, () => false);

/**
 * A release's venv runs on the interpreter it was made with, which its manifest names. An instance
 * without that interpreter cannot run the release: it fails with what it needs and what this
 * instance has (and the previous release keeps serving). One that has it binds the interpreter's
 * prefix into the app's sandbox, as the build's sandbox did.
 */
export async function requireInterpreter(
  manifest: BuildManifest,
  sandbox: Pick<AppSandbox, "allowReading">,
  runtimeRoot: string,
  /** Where releases and apps put files (the runtime root, the host cache): never an interpreter to run. */
  releaseFiles: string[] = [runtimeRoot],
): Promise<void> {
  const wanted = manifest.pythonInterpreterPath;
  // Oryx's manifests and older Slipway ones name none: the PATH's interpreter, as before.
  if (!wanted) return;
  const needs = `needs Python${manifest.pythonVersion ? ` ${manifest.pythonVersion}` : ""} (${wanted})`;
  // Only ever run something that is named like an interpreter, whatever the manifest says.
  if (!path.isAbsolute(wanted) || !/^python3(\.\d+)?$/.test(path.basename(wanted))) {
    throw new RestoreError(`the release ${needs}, which is not a path to a python3 executable`);
  }
  // The probe runs it here, as root: a file a build shipped or an app wrote never gets that far
  // (a venv's python3 links out to the interpreter it was made with, which is what counts).
  const resolved = await realpath(wanted).catch(() => wanted);
  if (releaseFiles.some((dir) => resolved.startsWith(`${path.resolve(dir)}${path.sep}`))) {
    throw new RestoreError(`the release ${needs}, which is a file of a release, not an installed Python`);
  }
  const found = await probeRemembered(wanted, runtimeRoot);
  if (!found) {
    const here = (await findPythons()).pythons.map((p) => p.version).sort(compareVersions);
    throw new RestoreError(`the release ${needs}; this instance has ${here.length ? `Python ${here.join(", ")}` : "no Python"}`);
  }
  if (manifest.pythonVersion && minor(found.version) !== minor(manifest.pythonVersion)) {
    throw new RestoreError(`the release ${needs}; on this instance ${wanted} is Python ${found.version}`);
  }
  for (const dir of found.mounts) {
    // Only an interpreter's own prefix is bound: its standard library is there.
    const stdlib = await Promise.all(["lib", "lib64"].map((lib) => exists(path.join(dir, lib, `python${minor(found.version)}`, "os.py"))));
    if (!stdlib.includes(true)) throw new RestoreError(`the release ${needs}; ${dir} does not look like a Python installation`);
    sandbox.allowReading(dir);
  }
}

/** Beside `releases/`, in the agent's own root-owned directory: no app can write it. */
const CACHE_FILE = "interpreters.json";

interface Remembered {
  /** The executable's file as it was when probed: device, inode, size, modification and change times. */
  identity: string;
  found: PythonInterpreter;
}

/**
 * What probing `command` found, while the file it resolves to is still the one probed; otherwise a
 * fresh probe, remembered. A probe runs the interpreter, tens of milliseconds that an agent
 * restart would otherwise spend on every start; a reinstalled or replaced interpreter changes the
 * file's identity (its change time only root can set, and only by changing the file).
 */
async function probeRemembered(command: string, runtimeRoot: string): Promise<PythonInterpreter | undefined> {
  const file = path.join(runtimeRoot, CACHE_FILE);
  const identity = await stat(command).then((info) => `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`, () => undefined);
  const remembered = await readRemembered(file);
  const hit = remembered[command];
  if (identity && hit?.identity === identity && isInterpreter(hit.found)) return hit.found;
  const found = await probePython(command);
  if (found && identity) {
    await mkdir(runtimeRoot, { recursive: true });
    await replaceFile(file, JSON.stringify({ ...remembered, [command]: { identity, found } }));
  }
  return found;
}

async function readRemembered(file: string): Promise<Record<string, Remembered>> {
  try {
    const saved = JSON.parse(await readFile(file, "utf8")) as unknown;
    return saved && typeof saved === "object" && !Array.isArray(saved) ? (saved as Record<string, Remembered>) : {};
  } catch {
    return {};
  }
}

function isInterpreter(value: unknown): value is PythonInterpreter {
  const found = value as Partial<PythonInterpreter> | undefined;
  const absolute = (dir: unknown) => typeof dir === "string" && path.isAbsolute(dir);
  return absolute(found?.command) && absolute(found?.prefix) && typeof found?.version === "string" && /^3\.\d+\.\d+/.test(found.version) && Array.isArray(found.mounts) && found.mounts.every(absolute);
}
