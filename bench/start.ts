/**
 * bench/start: what a process start costs where users wait, compiled (`npm run build`) against
 * TypeScript through tsx, side by side in one run (alternating, so load drift hits both alike):
 *   - agent: process start until it answers on its port (no release yet: a 503 is an answer);
 *   - restart: a stopped agent started again until it serves its already-extracted release;
 *   - help: `slipway --help` until it exits.
 * Medians of BENCH_RUNS runs (default 7) after one unmeasured warm-up of each (tsx's transform
 * cache, the page cache). Writes bench/results/start.json.
 *
 *   npm run bench:start
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, packDirectory } from "@slipway/shared";
import { stopChild } from "@slipway/shared/embedded";
import { buildAll } from "../scripts/build";
import { startBenchStack } from "./stack";
import { benchDir, machine, median, repoRoot, runBench, since, timeBuild, writeResult } from "./lib";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const TARGETS_S = { agentListening: 0.15, restartToServing: 0.3, cliHelp: 0.2 };
const APP_PY = `
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"served")
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

/** How each variant starts a program: node on the compiled bundle, or node with tsx on the source. */
const VARIANTS = {
  compiled: { agent: ["services/runtime-agent/dist/main.js"], cli: ["cli/bin/slipway.mjs"] },
  tsx: { agent: ["--import", "tsx", "services/runtime-agent/src/main.ts"], cli: ["--import", "tsx", "cli/src/main.ts"] },
} as const;
type Variant = keyof typeof VARIANTS;

/** Seconds from `start` until GET / on `port` answers (any status, or only 200 `served`). */
async function answeredAfter(port: number, start: bigint, child: ChildProcess, served: boolean): Promise<number> {
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the agent exited with code ${child.exitCode}`);
    const answer = await fetch(`http://127.0.0.1:${port}/`).then((r) => (served ? r.text() : "answered"), () => undefined);
    if (answer === "answered" || answer === "served") return since(start);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function main() {
  console.log("npm run build ...");
  await buildAll();
  const work = await benchDir("start");
  const stack = await startBenchStack(work);
  const agents: ChildProcess[] = [];
  const startAgent = (variant: Variant, app: string, port: number, runtimeRoot: string) => {
    const child = spawn(process.execPath, [...VARIANTS[variant].agent], {
      cwd: repoRoot,
      env: { ...process.env, ...stack.env, APP: app, INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: runtimeRoot, RECONCILE_INTERVAL_S: "3600" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    agents.push(child);
    return child;
  };
  /** One measured agent start: stopped again once it answered. */
  const agentStart = async (variant: Variant, app: string, port: number, runtimeRoot: string, served: boolean) => {
    const start = process.hrtime.bigint();
    const child = startAgent(variant, app, port, runtimeRoot);
    try {
      return await answeredAfter(port, start, child, served);
    } finally {
      await stopChild(child, 15_000);
    }
  };
  const cliHelp = async (variant: Variant) => {
    const start = process.hrtime.bigint();
    await promisify(execFile)(process.execPath, [...VARIANTS[variant].cli, "--help"], { cwd: repoRoot });
    return since(start);
  };

  try {
    const app = "bench-start";
    const src = path.join(work, "src");
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), APP_PY);
    const body = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);
    console.log("building the release ...");
    await timeBuild(stack.base, () => fetch(`${stack.base}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body }));
    const port = await freePort();
    const runtimeRoot = path.join(work, "instance");
    // The first start restores (downloads, extracts) the release; every later one finds it there.
    await agentStart("compiled", app, port, runtimeRoot, true);

    const samples = { agentListening: { compiled: [] as number[], tsx: [] as number[] }, restartToServing: { compiled: [] as number[], tsx: [] as number[] }, cliHelp: { compiled: [] as number[], tsx: [] as number[] } };
    for (let run = 0; run <= RUNS; run++) {
      for (const variant of ["tsx", "compiled"] as const) {
        const listening = await agentStart(variant, "bench-start-empty", port, path.join(work, "empty"), false);
        const restart = await agentStart(variant, app, port, runtimeRoot, true);
        const help = await cliHelp(variant);
        if (run === 0) continue; // warm-up
        samples.agentListening[variant].push(listening);
        samples.restartToServing[variant].push(restart);
        samples.cliHelp[variant].push(help);
      }
      if (run > 0) console.log(`run ${run}/${RUNS}: agent ${samples.agentListening.compiled.at(-1)!.toFixed(3)} s compiled vs ${samples.agentListening.tsx.at(-1)!.toFixed(3)} s tsx`);
    }

    const summary = Object.fromEntries(
      Object.entries(samples).map(([name, bySide]) => {
        const compiled = median(bySide.compiled);
        const tsx = median(bySide.tsx);
        const target = TARGETS_S[name as keyof typeof TARGETS_S];
        return [name, { medianSeconds: { compiled, tsx }, speedup: tsx / compiled, targetSeconds: target, compiledMeetsTarget: compiled <= target, samplesSeconds: bySide }];
      }),
    );
    for (const [name, result] of Object.entries(summary)) console.log(`${name}: compiled ${result.medianSeconds.compiled.toFixed(3)} s, tsx ${result.medianSeconds.tsx.toFixed(3)} s (target ${result.targetSeconds} s)`);
    await writeResult("start", {
      benchmark: "start",
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: os.loadavg(),
      storage: stack.s3.kind,
      runs: RUNS,
      ...summary,
      note: "real processes on this machine, tsx and compiled alternating in each run; agentListening: spawn until the agent answers HTTP on its port (503: no release); restartToServing: spawn until it serves its already-extracted Python release (includes the app's own start and health check); cliHelp: spawn until `slipway --help` exits (compiled: the bin; tsx: node --import tsx cli/src/main.ts). Load average at the end of the run is recorded beside the figures.",
    });
  } finally {
    await Promise.all(agents.map((child) => stopChild(child)));
    await stack.close();
  }
}

runBench("start", main);
