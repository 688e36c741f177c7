import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, freePort, loadAgentConfig, type InstanceReport } from "@slipway/shared";
import { RuntimeAgent } from "../../services/runtime-agent/src/agent";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { logTail, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";

/**
 * Root works in release directories: the agent writes its marker and profile there, hands the tree
 * to the app's uid, and an operator sources the profile as root. Each attack here is an app (its
 * build or its running process) making root follow a path of its choosing.
 */

let stack: InProcessStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-release-dir-"));
  stack = await startInProcessStack();
});

afterAll(async () => {
  await stack?.close();
  await rm(work, { recursive: true, force: true });
});

async function deploy(app: string, files: Record<string, string>, buildEnv: Record<string, string> = {}) {
  await stack.api.apps.upsert(app, { buildEnv });
  const dir = await writeTree(path.join(work, `src-${app}`), files);
  const built = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
  if (built.error) throw new Error(`build ${built.id} failed: ${built.error}${await logTail(stack.baseUrl, built.id)}`);
  return built;
}

async function startAgent(app: string, layout: string) {
  const port = await freePort();
  const runtimeRoot = path.join(work, `${app}-runtime-${layout}`);
  const config = loadAgentConfig({ ...stack.env, APP: app, INSTANCE_ID: `i-${layout}`, PORT: String(port), RUNTIME_ROOT: runtimeRoot, RELEASE_LAYOUT: layout, HEALTH_TIMEOUT_S: "30" });
  const agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("agent", "silent"));
  await agent.start();
  return { agent, url: `http://127.0.0.1:${port}`, runtimeRoot, instanceId: `i-${layout}` };
}

const reportOf = async (app: string, instanceId: string): Promise<InstanceReport | undefined> => (await stack.api.instances.list(app)).find((r) => r.instanceId === instanceId);
const serving = (url: string, body: string) => eventually(async () => ((await fetch(url).then((r) => r.text(), () => "")) === body ? true : undefined), 60_000, `${url} serving ${body}`);

/** A root-owned directory of the host standing for /etc or /root: no app may get it or write into it. */
async function hostDirectory(name: string): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

// Serves "up"; with SWAP_TO set, keeps swapping its directories d0..d39 for links to that path;
// at start it replaces its venv's activate with a script that leaves PLANT's file behind.
const APP = `
import os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
here = os.environ["APP_PATH"]
if os.environ.get("PLANT"):
    activate = os.path.join(here, "antenv", "bin", "activate")
    with open(activate + ".new", "w") as f:
        f.write("touch '" + os.environ["PLANT"] + "'\\n")
    os.replace(activate + ".new", activate)
def swap(target):
    while True:
        for i in range(40):
            d = os.path.join(here, "d%d" % i)
            try:
                os.rename(d, d + ".x"); os.symlink(target, d); os.unlink(d); os.rename(d + ".x", d)
            except OSError:
                pass
if os.environ.get("SWAP_TO"):
    os.makedirs(os.path.join(here, "private"), exist_ok=True)
    os.chmod(os.path.join(here, "private"), 0o700)
    threading.Thread(target=swap, args=(os.environ["SWAP_TO"],), daemon=True).start()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("up " + os.environ.get("GEN", "")).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

const appFiles = () => ({ "app.py": APP, "requirements.txt": "", ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d${i}/keep`, ""])) });

describe.each(["copy", "auto"])("release directories (RELEASE_LAYOUT=%s)", (layout) => {
  it("a build that makes .slipway a link out of the tree is refused: root writes no profile or marker where it points", async () => {
    const app = uniqueApp("dotslipway");
    const target = await hostDirectory(`root-sourced-${layout}`);
    await deploy(app, { "app.py": APP, "requirements.txt": "" }, { POST_BUILD_COMMAND: `rm -rf .slipway && ln -s '${target}' .slipway` });
    const { agent, instanceId } = await startAgent(app, layout);
    try {
      const failed = await eventually(async () => {
        const report = await reportOf(app, instanceId);
        return report?.state === "failed" ? report : undefined;
      }, 60_000, "the instance to refuse the release");
      expect(failed.error).toMatch(/\.slipway as a symbolic link/);
      expect(await readdir(target)).toEqual([]);
    } finally {
      await agent.stop();
    }
  });

  it("the profile an operator sources as root runs nothing the app wrote, and sets the app's environment itself", async () => {
    const app = uniqueApp("profile");
    const planted = path.join(work, `planted-by-activate-${layout}`);
    await stack.api.apps.upsert(app, { env: { PLANT: planted } });
    await deploy(app, appFiles());
    const { agent, url, runtimeRoot } = await startAgent(app, layout);
    try {
      await serving(url, "up ");
      const shell = execFileSync("bash", ["-c", `. '${runtimeRoot}/current/.slipway/profile.sh' && echo "$VIRTUAL_ENV" && command -v python`], { encoding: "utf8" });
      expect(existsSync(planted)).toBe(false);
      const [venv, python] = shell.trim().split("\n");
      expect(venv).toMatch(new RegExp(`^${runtimeRoot}/releases/[^/]+/antenv$`));
      // Over an overlay the host's release directory holds only the instance's changes: the venv's
      // python is in the app's mount namespace, not here.
      if (existsSync(`${venv}/bin/python`)) expect(python).toBe(`${venv}/bin/python`);
    } finally {
      await agent.stop();
    }
  });
});

describe("a config release", () => {
  it("never walks a tree the running app can change: directories swapped for links during it do not hand a host directory to the app", async () => {
    const app = uniqueApp("swap");
    const victim = await hostDirectory("root-owned-victim");
    await stack.api.apps.upsert(app, { env: { SWAP_TO: victim, GEN: "1" } });
    await deploy(app, appFiles());
    const { agent, url, instanceId } = await startAgent(app, "copy");
    try {
      await serving(url, "up 1");
      const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/config`, { method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ set: { GEN: "2" } }) });
      expect(response.status).toBe(200);
      const releases = (await (await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`)).json()) as { version: number }[];
      const version = Math.max(...releases.map((r) => r.version));
      // The config release ends, one way or the other, with the swapping app running throughout.
      await eventually(async () => {
        const report = await reportOf(app, instanceId);
        return report?.release === version && ["running", "failed"].includes(report.state) ? true : undefined;
      }, 60_000, `v${version} to settle`);
      expect((await stat(victim)).uid).toBe(0);
      // What shows the walk itself: it would have opened the directory the app closed.
      const current = (await reportOf(app, instanceId))!.appPath!;
      expect((await stat(path.join(current, "private"))).mode & 0o777).toBe(0o700);
    } finally {
      await agent.stop();
    }
  });
});
