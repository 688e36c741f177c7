/**
 * bench/rollout: with 8 runtime agents (real processes) of one app on this machine, the time from
 * a release being published until every instance serves it, twice in one run: with the host cache
 * off (each agent its own HOST_CACHE_DIR, so each downloads and extracts) and on (one shared
 * HOST_CACHE_DIR: one extraction, hard-link copies). Then the restart-to-serving time of an agent
 * whose release is already extracted, against a cold restore and against a restore the host
 * cache already holds. Writes bench/results/rollout.json.
 *
 *   npm run bench:rollout   (builds first: agents run compiled, as in production; BENCH_AGENTS, BENCH_REQUIREMENTS override)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort, packDirectory } from "@slipway/shared";
import { stopChild } from "@slipway/shared/embedded";
import { compiledEntry } from "../test/harness/entries";
import { buildAll } from "../scripts/build";
import { startBenchStack } from "./stack";
import { benchDir, machine, repoRoot, runBench, since, treeStats, writeResult } from "./lib";

const AGENTS = Number(process.env.BENCH_AGENTS ?? 8);
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
  await buildAll();
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
  /** `hostCache` names the agent's HOST_CACHE_DIR: shared by all, or (undefined) one of its own. */
  const startAgent = (index: number, port: number, phase: string, hostCache?: string) => {
    const runtimeRoot = path.join(work, `${phase}-instance-${index}`);
    const child = spawn(process.execPath, [compiledEntry("runtime-agent")], {
      cwd: repoRoot,
      env: {
        ...process.env,
        ...env,
        APP: app,
        INSTANCE_ID: `i-${index}`,
        PORT: String(port),
        RUNTIME_ROOT: runtimeRoot,
        HOST_CACHE_DIR: hostCache ?? path.join(runtimeRoot, "own-host-cache"),
        RECONCILE_INTERVAL_S: "3600",
        MAX_UNAVAILABLE,
        ...(process.env.BENCH_LOGS ? { LOG_LEVEL: "info" } : {}),
      },
      // BENCH_LOGS=<dir> keeps each agent's log there, to see where the time went.
      stdio: ["ignore", process.env.BENCH_LOGS ? openSync(path.join(process.env.BENCH_LOGS, `${phase}-agent-${index}.log`), "a") : "ignore", "inherit"],
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

  const stopAll = async () => {
    await Promise.all([...agents.values()].map((child) => stopChild(child)));
    agents.clear();
  };
  const release = async (buildId: string) => {
    const released = await fetch(`${base}/v1/apps/${app}/releases`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ buildId }) });
    if (released.status !== 201) throw new Error(`release answered ${released.status}`);
  };
  /** Agents boot serving `serving`, then `next` is published: seconds until each serves it. */
  const rollout = async (phase: string, serving: string, next: { version: string; buildId: string }, hostCache?: string) => {
    const ports = await Promise.all(Array.from({ length: AGENTS }, () => freePort()));
    ports.forEach((port, i) => startAgent(i, port, phase, hostCache));
    const bootStart = process.hrtime.bigint();
    await Promise.all(ports.map((port) => servingSince(port, serving, bootStart)));
    console.log(`${phase}: releasing ${next.version} to ${AGENTS} instances ...`);
    const start = process.hrtime.bigint();
    await release(next.buildId);
    const perInstance = await Promise.all(ports.map((port) => servingSince(port, next.version, start)));
    console.log(`${phase}: all ${AGENTS} serve ${next.version} after ${Math.max(...perInstance).toFixed(2)} s`);
    return { ports, perInstance };
  };

  try {
    console.log("building v1, v2 and v3 ...");
    await build("v1", true);
    const v2 = await build("v2", false);
    const v3 = await build("v3", false);
    const off = await rollout("cache-off", "v1", { version: "v2", buildId: v2 });
    await stopAll();
    const hostCache = path.join(work, "host-cache");
    const on = await rollout("cache-on", "v2", { version: "v3", buildId: v3 }, hostCache);
    const port0 = on.ports[0]!;

    // Restart of an agent whose release is extracted and verified; after wiping its release
    // directory (the host cache still holds the release); after wiping the host cache too.
    const restart = async (wipe: "nothing" | "instance" | "all") => {
      await stopChild(agents.get(0)!);
      if (wipe !== "nothing") await rm(path.join(work, "cache-on-instance-0"), { recursive: true, force: true });
      if (wipe === "all") await rm(path.join(hostCache, app, v3), { recursive: true, force: true });
      const t = process.hrtime.bigint();
      startAgent(0, port0, "cache-on", hostCache);
      return servingSince(port0, "v3", t);
    };
    const warmRestart = await restart("nothing");
    const hostCacheRestart = await restart("instance");
    const coldRestart = await restart("all");
    console.log(`restart to serving: already extracted ${warmRestart.toFixed(2)} s, from the host cache ${hostCacheRestart.toFixed(2)} s, cold ${coldRestart.toFixed(2)} s`);

    // The whole release as the host cache holds it (an instance's own directory may be only an overlay's upper layer).
    const artifactTree = treeStats(path.join(hostCache, app, v3, "tree"));
    await writeResult("rollout", {
      benchmark: "rollout",
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: os.loadavg(),
      storage: s3.kind,
      agents: AGENTS,
      maxUnavailable: Number(MAX_UNAVAILABLE),
      release: { requirements: REQUIREMENTS.trim().split("\n"), files: artifactTree.files, bytes: artifactTree.bytes },
      publishToAllServingSeconds: { hostCacheOff: Math.max(...off.perInstance), hostCacheOn: Math.max(...on.perInstance) },
      publishToServingPerInstanceSeconds: { hostCacheOff: off.perInstance, hostCacheOn: on.perInstance },
      restartToServingSeconds: { alreadyExtracted: warmRestart, fromHostCache: hostCacheRestart, coldRestore: coldRestart, ratio: coldRestart / warmRestart },
      note: "agents are real processes on this 2-core machine; with rolling rollout the first instance switches alone, then MAX_UNAVAILABLE at a time (restores themselves run in parallel beforehand); times include download, sha256, extraction, venv relocation, app start and health check. hostCacheOff gives each agent its own HOST_CACHE_DIR (each downloads and extracts), hostCacheOn one shared by all (one extraction; each instance an overlay over it, or a hard-link copy where no sandbox can mount one), in the same run. Agents run compiled (node dist/main.js); restart times include the agent's own start-up.",
    });
  } finally {
    await stopAll();
    await stack.close();
  }
}

runBench("rollout", main);
