import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest, storageKeys } from "@slipway/shared";
import type { PythonInterpreter } from "@slipway/shared/sandbox";
import { uniqueApp } from "../../../test/harness/env";
import { extractArtifact, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../../../test/harness/stack";
import { buildWheel } from "../../../test/harness/wheels";
import { matchPython, requestedVersion, selectPython } from "../src/platforms/python-versions";

const python = (version: string): PythonInterpreter => ({ command: `/opt/python/${version}/bin/python3`, version, prefix: `/opt/python/${version}`, mounts: [`/opt/python/${version}`] });

describe("choosing the Python version", () => {
  it("PYTHON_VERSION, else runtime.txt, else .python-version (its first line), else none", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "slipway-pyver-"));
    try {
      expect(await requestedVersion(dir, {})).toBeUndefined();
      await writeTree(dir, { ".python-version": "# pyenv local\n3.12\n3.11\n" });
      expect(await requestedVersion(dir, {})).toEqual({ version: "3.12", source: ".python-version" });
      await writeTree(dir, { "runtime.txt": "python-3.11.7\n" });
      expect(await requestedVersion(dir, {})).toEqual({ version: "3.11.7", source: "runtime.txt" });
      expect(await requestedVersion(dir, { PYTHON_VERSION: "3.13" })).toEqual({ version: "3.13", source: "PYTHON_VERSION" });
      await rm(path.join(dir, "runtime.txt"));
      await writeTree(dir, { ".python-version": "pypy3.10\n" });
      await expect(requestedVersion(dir, {})).rejects.toThrow('.python-version says "pypy3.10"; expected a version like 3.13 or 3.13.1');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a version prefix matches the newest interpreter of that series; none matching fails, listing what there is", () => {
    const found = { pythons: [python("3.11.2"), python("3.12.1"), python("3.11.7"), python("3.13.0rc1"), python("3.13.0")], default: python("3.11.2") };
    expect(matchPython(found.pythons, "3.11")!.version).toBe("3.11.7");
    expect(matchPython(found.pythons, "3.11.2")!.version).toBe("3.11.2");
    expect(matchPython(found.pythons, "3")!.version).toBe("3.13.0");
    expect(matchPython(found.pythons, "3.1")).toBeUndefined();
    expect(selectPython(found, undefined).version).toBe("3.11.2");
    expect(() => selectPython(found, { version: "3.14", source: ".python-version" })).toThrow(
      "Python 3.14 was requested (.python-version) but this worker has 3.11.2, 3.11.7, 3.12.1, 3.13.0rc1, 3.13.0",
    );
  });
});

const PYENV_VERSIONS = "/root/.pyenv/versions";
const pyenv = existsSync(PYENV_VERSIONS) ? readdirSync(PYENV_VERSIONS).filter((name) => existsSync(path.join(PYENV_VERSIONS, name, "bin", "python3"))) : [];
const newest = (series: string) => pyenv.filter((v) => v.startsWith(`${series}.`)).sort((a, b) => Number(b.split(".")[2]) - Number(a.split(".")[2]))[0];

/** A worker offered pyenv's interpreters through PYTHON_INSTALLS_DIR, building inside its sandbox. */
describe.skipIf(!newest("3.12") || !newest("3.13"))("PYTHON_INSTALLS_DIR (pyenv's versions on this machine)", () => {
  let stack: InProcessStack;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "slipway-pyinstalls-"));
    const wheels = path.join(work, "wheels");
    await mkdir(wheels);
    buildWheel(wheels, { name: "slipway-greeter", version: "1.0", script: "slipway-greeter", message: "greeter ok" });
    stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1", PYTHON_INSTALLS_DIR: PYENV_VERSIONS });
  });

  afterAll(async () => {
    await stack.close();
    await rm(work, { recursive: true, force: true });
  });

  async function buildApp(files: Record<string, string>, buildEnv?: Record<string, string>) {
    const app = uniqueApp("pyver");
    if (buildEnv) await stack.api.apps.upsert(app, { buildEnv });
    const dir = await writeTree(await mkdtemp(path.join(work, "src-")), files);
    const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id, 180_000);
    const log = await stack.api.store.getText(storageKeys.buildLog(app, build.id));
    const manifest = build.status === "succeeded" ? parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id))) : undefined;
    return { build, log, manifest };
  }

  it(".python-version picks a pyenv interpreter; the venv is made with it and runs inside the build's sandbox; the manifest records it", async () => {
    const version = newest("3.12")!;
    const { build, log, manifest } = await buildApp({
      ".python-version": "3.12\n",
      "requirements.txt": "slipway-greeter==1.0\n",
      "app.py": "",
      "build.env": "POST_BUILD_COMMAND=antenv/bin/python -c 'import platform; print(platform.python_version())' > built-with.txt && antenv/bin/slipway-greeter > greeter.txt",
    });
    expect(build.error).toBeUndefined();
    const interpreter = path.join(PYENV_VERSIONS, version, "bin", "python3");
    expect(log).toContain(`Using Python ${version} (${interpreter}) for .python-version 3.12`);
    expect(manifest).toMatchObject({ pythonVersion: version, pythonInterpreterPath: interpreter });
    const out = await extractArtifact(stack, build, work);
    expect((await readFile(path.join(out, "built-with.txt"), "utf8")).trim()).toBe(version);
    expect((await readFile(path.join(out, "greeter.txt"), "utf8")).trim()).toBe("greeter ok");
    expect(await readdir(path.join(out, "antenv", "lib"))).toEqual([`python${version.split(".").slice(0, 2).join(".")}`]);
  });

  it("PYTHON_VERSION over runtime.txt over .python-version; a series matches its newest release, `3` the newest of all", async () => {
    const files = { "app.py": "", ".python-version": "3.12\n", "runtime.txt": "python-3.13\n" };
    expect((await buildApp(files)).manifest!.pythonVersion).toBe(newest("3.13"));
    expect((await buildApp(files, { PYTHON_VERSION: "3.11" })).manifest!.pythonVersion).toBe(newest("3.11") ?? expect.stringMatching(/^3\.11\./));
    const newestOfAll = pyenv.filter((v) => v.startsWith("3.")).sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))[0]!;
    expect((await buildApp({ "app.py": "" }, { PYTHON_VERSION: "3" })).manifest!.pythonVersion).toBe(newestOfAll);
  });

  it("a version no interpreter has fails at once, listing every version the worker offers, pyenv's included", async () => {
    const { build } = await buildApp({ "app.py": "", ".python-version": "3.99\n" });
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^Python 3\.99 was requested \(\.python-version\) but this worker has /);
    for (const version of pyenv.filter((v) => /^3\.\d+\.\d+$/.test(v))) expect(build.error).toContain(version);
    // Listed oldest first.
    const listed = build.error!.split(" has ")[1]!.split(", ");
    expect(listed).toEqual([...listed].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  });
});
