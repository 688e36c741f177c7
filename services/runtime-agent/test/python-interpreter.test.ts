import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, parseManifest, storageKeys } from "@slipway/shared";
import { compareVersions, findPythons } from "@slipway/shared/sandbox";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../../../test/harness/stack";
import type { RuntimeAgent } from "../src/agent";
import { releaseByHand, startAgentOn } from "../../../test/harness/agents";

/**
 * A release built with an interpreter from the worker's PYTHON_INSTALLS_DIR: the agent binds that
 * interpreter into the app's sandbox, and an instance that lacks it says so and keeps the release
 * it serves. The installs directory holds a link to one of pyenv's versions, which the test
 * removes to play an instance without it.
 */
const PYENV_312 = "/root/.pyenv/versions/3.12.1";

describe.skipIf(!existsSync(path.join(PYENV_312, "bin", "python3")))("a release needs the interpreter it was built with", () => {
  let stack: InProcessStack;
  let work: string;
  let installs: string;
  let agent: RuntimeAgent;
  let instanceUrl: string;
  const app = uniqueApp("interp");

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "slipway-interp-"));
    installs = path.join(work, "installs");
    await mkdir(installs);
    await symlink(PYENV_312, path.join(installs, "3.12"));
    stack = await startInProcessStack({ PYTHON_INSTALLS_DIR: installs });
    instanceUrl = `http://127.0.0.1:${await freePort()}`;
  });

  afterAll(async () => {
    await agent?.stop();
    await stack?.close();
    await rm(work, { recursive: true, force: true });
  });

  async function build(label: string, options: { pythonVersion?: string; deploy: boolean }): Promise<BuildView> {
    await stack.api.apps.upsert(app, { buildEnv: options.pythonVersion ? { PYTHON_VERSION: options.pythonVersion } : {} });
    const dir = await writeTree(await mkdtemp(path.join(work, "src-")), { "app.py": versionApp(label) });
    const done = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir, options.deploy ? "" : "?deploy=false")).id);
    expect(done.error).toBeUndefined();
    return done;
  }

  const release = (buildId: string) => releaseByHand(stack, app, buildId);

  const body = async () => (await fetch(instanceUrl)).text();

  /** Answers its label, the Python it runs on, and whether that is its venv's. */
  const versionApp = (label: string) => `
import os, platform, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"${label}|{platform.python_version()}|{sys.prefix == os.environ['VIRTUAL_ENV']}".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;
  const defaultVersion = async () => (await findPythons()).default!.version;

  it("serves a release built with the installs directory's 3.12 (bound into its sandbox); once the instance lacks it, a new one fails saying what it needs, and the old one keeps serving", async () => {
    await build("v1", { deploy: true });
    agent = await startAgentOn(stack, { APP: app, INSTANCE_ID: "i-1", PORT: new URL(instanceUrl).port, RUNTIME_ROOT: path.join(work, "runtime"), HEALTH_TIMEOUT_S: "10", RECONCILE_INTERVAL_S: "3600" });
    const v1 = `v1|${await defaultVersion()}|True`;
    await eventually(async () => ((await body()) === v1 ? true : undefined), 30_000, "v1 serving");

    // Built with the 3.12 of the installs directory, which only this release's sandbox gets bound.
    const on312 = await build("v2", { pythonVersion: "3.12", deploy: false });
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, on312.id)));
    const interpreter = path.join(installs, "3.12", "bin", "python3");
    expect(manifest).toMatchObject({ pythonVersion: "3.12.1", pythonInterpreterPath: interpreter });
    await release(on312.id);
    // On 3.12.1 from its venv: the interpreter was reachable inside the app's sandbox.
    await eventually(async () => ((await body()) === "v2|3.12.1|True" ? true : undefined), 30_000, "v2 serving on 3.12.1");

    // An instance without that interpreter: the link is gone.
    const again = await build("v3", { pythonVersion: "3.12", deploy: false });
    await rm(path.join(installs, "3.12"));
    const version = await release(again.id);
    const report = await eventually(async () => {
      const instance = (await stack.api.instances.list(app)).find((i) => i.instanceId === "i-1");
      return instance?.state === "failed" && instance.release === version ? instance : undefined;
    }, 30_000, "the release reported failed");
    const here = (await findPythons()).pythons.map((p) => p.version).sort(compareVersions);
    expect(report.error).toBe(`the release needs Python 3.12.1 (${interpreter}); this instance has Python ${here.join(", ")}`);
    expect(await body()).toBe("v2|3.12.1|True");
  }, 180_000);
});
