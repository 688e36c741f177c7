import { access } from "node:fs/promises";
import path from "node:path";
import type { BuildManifest } from "@slipway/shared";
import { compareVersions, findPythons, probePython } from "@slipway/shared/sandbox";
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
export async function requireInterpreter(manifest: BuildManifest, sandbox: Pick<AppSandbox, "allowReading">): Promise<void> {
  const wanted = manifest.pythonInterpreterPath;
  // Oryx's manifests and older Slipway ones name none: the PATH's interpreter, as before.
  if (!wanted) return;
  const needs = `needs Python${manifest.pythonVersion ? ` ${manifest.pythonVersion}` : ""} (${wanted})`;
  // Only ever run something that is named like an interpreter, whatever the manifest says.
  if (!path.isAbsolute(wanted) || !/^python3(\.\d+)?$/.test(path.basename(wanted))) {
    throw new RestoreError(`the release ${needs}, which is not a path to a python3 executable`);
  }
  const found = await probePython(wanted);
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
