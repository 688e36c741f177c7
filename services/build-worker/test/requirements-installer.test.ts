import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { eventually } from "../../../test/harness/local-stack";
import { spawnAgent, startInProcessStack, type InProcessStack } from "../../../test/harness/stack";
import { pythonBuilds } from "../../../test/harness/python-builds";
import { buildPackageWheel, buildWheel } from "../../../test/harness/wheels";
import { UV_VERSION } from "../src/platforms/python-installers";

/**
 * requirements files through uv (the default), pip on PYTHON_INSTALLER=pip, and pip when uv fails,
 * offline from local wheels (PIP_FIND_LINKS + PIP_NO_INDEX, which uv gets in its own words).
 */
let stack: InProcessStack;
let work: string;
const agents: ReturnType<typeof spawnAgent>[] = [];

const UV_LINE = `Running pip install -r requirements.txt ... with uv ${UV_VERSION} (uv pip install; PYTHON_INSTALLER=pip runs pip itself)`;
const PIP_LINE = "Running pip install -r requirements.txt ...";

/** A web server whose console script answers where its own module was loaded from. */
const SERVER = `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = __file__.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
def main():
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-requirements-"));
  const wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "slipway-greeter", version: "1.0", script: "slipway-greeter", message: "greeter ok" });
  buildPackageWheel(wheels, { name: "slipway-web", version: "1.0", files: { "slipway_web/__init__.py": SERVER }, scripts: { "slipway-web": "slipway_web:main" } });
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" });
}, 120_000);

afterAll(async () => {
  for (const agent of agents) agent.child.kill("SIGTERM");
  await Promise.all(agents.map((agent) => agent.exited));
  await stack?.close();
  await rm(work, { recursive: true, force: true });
});

const { buildApp, rebuild, sitePackages } = pythonBuilds(() => stack, () => work);

/** Which installer wrote a package's dist-info (each writes its own name into INSTALLER). */
const installerOf = async (site: string, distInfo: string) => (await readFile(path.join(site, distInfo, "INSTALLER"), "utf8")).trim();

describe("requirements files", () => {
  it("install with uv into pip's venv, bytecode compiled; the console script runs where a runtime agent restored the venv", async () => {
    const { app, build, log } = await buildApp({ "requirements.txt": "slipway-web==1.0\nslipway-greeter==1.0\n", Procfile: "web: slipway-web\n" });
    expect(build.error).toBeUndefined();
    expect(log).toContain(UV_LINE);
    expect(log).not.toContain("uv could not install");
    const site = await sitePackages(build);
    expect(await installerOf(site, "slipway_web-1.0.dist-info")).toBe("uv");
    expect((await readdir(path.join(site, "slipway_web", "__pycache__"))).some((name) => name.endsWith(".pyc"))).toBe(true);
    // The venv is python -m venv's, seeded with the interpreter's bundled wheels put in by uv:
    // pip, and before Python 3.12 setuptools (gunicorn 20 imports pkg_resources), as venv seeds it.
    expect(log).toMatch(/Creating virtual environment antenv \(python -m venv --without-pip, then its bundled pip-[\d.]+-py3-none-any\.whl(, setuptools-[\d.]+-py3-none-any\.whl)? through uv\)/);
    const venvPython = path.join(site, "..", "..", "..", "bin", "python");
    expect(execFileSync(venvPython, ["-m", "pip", "--version"], { encoding: "utf8" })).toMatch(/^pip \d/);
    const minor = Number(execFileSync(venvPython, ["-c", "import sys; print(sys.version_info[1])"], { encoding: "utf8" }).trim());
    const seedsSetuptools = minor < 12;
    expect(log.includes(", setuptools-")).toBe(seedsSetuptools);
    if (seedsSetuptools) expect(execFileSync(venvPython, ["-c", "import pkg_resources, setuptools; print(setuptools.__version__)"], { encoding: "utf8" })).toMatch(/^\d+\./);

    // The agent restores the release under its own root, not the build's directory: uv's console
    // script (its shebang names the build's venv) runs only if the venv was relocated.
    const port = await freePort();
    const runtimeRoot = path.join(work, `runtime-${app}`);
    agents.push(spawnAgent(stack, { APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: runtimeRoot }));
    const body = await eventually(async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      return response?.ok ? response.text() : undefined;
    }, 60_000, `${app} to answer`);
    expect(body).toMatch(/\/releases\/[^/]+\/antenv\/lib\/python3\.\d+\/site-packages\/slipway_web\/__init__\.py$/);
  }, 300_000);

  it("fall back to pip in a fresh venv when uv rejects the file, saying so with uv's reason", async () => {
    // A per-requirement --config-settings: pip takes it, uv's requirements parser refuses it.
    const { build, log } = await buildApp({ "requirements.txt": "slipway-greeter==1.0 --config-settings=mode=plain\n", "app.py": "" });
    expect(build.error).toBeUndefined();
    expect(log).toContain(UV_LINE);
    expect(log).toMatch(/uv could not install requirements\.txt \(error: .*--config-settings=mode=plain.*\): using pip instead, in a fresh antenv/);
    expect(log).toMatch(/uv could not install[\s\S]*Re-creating virtual environment antenv[\s\S]*Running pip install -r requirements\.txt \.\.\.\n/);
    expect(await installerOf(await sitePackages(build), "slipway_greeter-1.0.dist-info")).toBe("pip");
  }, 300_000);

  it("install with pip when PYTHON_INSTALLER=pip; any other value fails the build", async () => {
    const files = { "requirements.txt": "slipway-greeter==1.0\n", "app.py": "" };
    const { build, log } = await buildApp(files, { buildEnv: { PYTHON_INSTALLER: "pip" } });
    expect(build.error).toBeUndefined();
    expect(log).toMatch(/^Running pip install -r requirements\.txt \.\.\.$/m);
    expect(log).not.toContain("uv pip install");
    expect(await installerOf(await sitePackages(build), "slipway_greeter-1.0.dist-info")).toBe("pip");

    const wrong = await buildApp(files, { buildEnv: { PYTHON_INSTALLER: "conda" } });
    expect(wrong.build.error).toBe('PYTHON_INSTALLER must be uv or pip (it is "conda")');
  }, 300_000);

  it("a uv venv is cached: a rebuild with the same requirements restores it and installs nothing", async () => {
    const first = await buildApp({ "requirements.txt": "slipway-greeter==1.0\n", "app.py": "" });
    expect(first.build.error).toBeUndefined();
    expect(first.log).toMatch(/Dependency cache miss for antenv[\s\S]*with uv[\s\S]*Saved antenv to the dependency cache/);

    const again = await rebuild(first.app);
    expect(again.build.status).toBe("succeeded");
    expect(again.log).toContain("Dependency cache hit: restored antenv");
    expect(again.log).toContain("Skipping venv creation and uv install");
    expect(again.log).not.toContain(PIP_LINE);
    expect(await installerOf(await sitePackages(again.build), "slipway_greeter-1.0.dist-info")).toBe("uv");
  }, 300_000);
});
