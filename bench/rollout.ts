/**
 * bench/rollout: with 4 runtime agents (real processes) of one app on this machine, the time from
 * a release being published until every instance serves it; and the restart-to-serving time of an
 * agent whose release is already extracted, against a cold restore. Writes bench/results/rollout.json.
 *
 *   npm run bench:rollout            (BENCH_REQUIREMENTS overrides the app's requirements)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort, packDirectory } from "@slipway/shared";
import { stopChild } from "@slipway/shared/embedded";
import { startBenchStack } from "./stack";
import { benchDir, machine, repoRoot, since, treeStats, writeResult } from "./lib";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 4);
const MAX_UNAVAILABLE = process.env.MAX_UNAVAILABLE ?? "1";
const REQUIREMENTS = process.env.BENCH_REQUIREMENTS ?? "Django==5.1.*\nrequests==2.32.*\n";
const APP_PY = `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
VERSION = open(os.path.join(os.environ["APP_PATH"], "VERSION")).read().strip()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(VERSION.encode())
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

async function main() {
  const work = await benchDir("rollout");
  const stack = await startBenchStack(work);
  const { env, base, s3 } = stack;
  const agents = new Map<number, ChildProcess>();
  const app = "bench-rollout";

  const build = async (version: string, deploy: boolean) => {
    const src = path.join(work, `src-${version}`);
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), APP_PY);
    await writeFile(path.join(src, "VERSION"), version);
    await writeFile(path.join(src, "requirements.txt"), REQUIREMENTS);
    const body = await readFile((await packDirectory(src, path.join(work, `src-${version}.tar.gz`))).file);
    const response = await fetch(`${base}/v1/apps/${app}/builds${deploy ? "" : "?deploy=false"}`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body });
    const { id } = (await response.json()) as { id: string };
    for (;;) {
      const state = (await (await fetch(`${base}/v1/builds/${id}`)).json()) as { status: string; error?: string };
      if (state.status === "succeeded") return id;
      if (state.status !== "queued" && state.status !== "running") throw new Error(`build ${state.status}: ${state.error}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const startAgent = (index: number, port: number) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "services/runtime-agent/src/main.ts")], {
      cwd: repoRoot,
      env: { ...process.env, ...env, APP: app, INSTANCE_ID: `i-${index}`, PORT: String(port), RUNTIME_ROOT: path.join(work, `instance-${index}`), RECONCILE_INTERVAL_S: "3600", MAX_UNAVAILABLE },
      stdio: ["ignore", "ignore", "inherit"],
    });
    agents.set(index, child);
  };
  const servingSince = async (port: number, version: string, start: bigint): Promise<number> => {
    for (;;) {
      const body = await fetch(`http://127.0.0.1:${port}/`).then((r) => (r.ok ? r.text() : ""), () => "");
      if (body === version) return since(start);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  try {
    console.log("building v1 and v2 ...");
    await build("v1", true);
    const v2 = await build("v2", false);
    const ports = await Promise.all(Array.from({ length: AGENTS }, () => freePort()));
    ports.forEach((port, i) => startAgent(i, port));
    const bootStart = process.hrtime.bigint();
    await Promise.all(ports.map((port) => servingSince(port, "v1", bootStart)));

    console.log(`releasing v2 to ${AGENTS} instances ...`);
    const start = process.hrtime.bigint();
    const released = await fetch(`${base}/v1/apps/${app}/releases`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ buildId: v2 }) });
    if (released.status !== 201) throw new Error(`release answered ${released.status}`);
    const perInstance = await Promise.all(ports.map((port) => servingSince(port, "v2", start)));
    console.log(`all ${AGENTS} serve v2 after ${Math.max(...perInstance).toFixed(2)} s`);

    // Restart of an agent whose release is extracted and verified, then the same after wiping it.
    const restart = async (wipe: boolean) => {
      await stopChild(agents.get(0)!);
      if (wipe) await rm(path.join(work, "instance-0"), { recursive: true, force: true });
      const t = process.hrtime.bigint();
      startAgent(0, ports[0]!);
      return servingSince(ports[0]!, "v2", t);
    };
    const warmRestart = await restart(false);
    const coldRestart = await restart(true);
    console.log(`restart to serving: already extracted ${warmRestart.toFixed(2)} s, cold ${coldRestart.toFixed(2)} s`);

    const artifactTree = treeStats(path.join(work, "instance-1", "releases", v2));
    await writeResult(process.env.BENCH_RESULT ?? "rollout", {
      benchmark: "rollout",
      date: new Date().toISOString(),
      machine: machine(),
      storage: s3.kind,
      agents: AGENTS,
      maxUnavailable: Number(MAX_UNAVAILABLE),
      release: { requirements: REQUIREMENTS.trim().split("\n"), files: artifactTree.files, bytes: artifactTree.bytes },
      publishToAllServingSeconds: Math.max(...perInstance),
      publishToServingPerInstanceSeconds: perInstance,
      restartToServingSeconds: { alreadyExtracted: warmRestart, coldRestore: coldRestart, ratio: coldRestart / warmRestart },
      note: "agents are real processes on this 2-core machine; with rolling rollout the first instance switches alone, then MAX_UNAVAILABLE at a time (restores themselves run in parallel beforehand); times include download, sha256, extraction, venv relocation, app start and health check. Restart times include node/tsx start-up of the agent itself.",
    });
  } finally {
    await Promise.all([...agents.values()].map((child) => stopChild(child)));
    await stack.close();
  }
}

main().then(
  // A lingering keep-alive socket must not hold a finished benchmark open.
  () => process.exit(0),
  (error) => {
    console.error(`bench/rollout failed: ${(error as Error).message}`);
    process.exit(1);
  },
);
