/**
 * bench/sandbox: what the sandbox costs, measured side by side in one run. A cold Python build
 * (fresh venv + pip install from the package index) and a warm rebuild (dependency cache), each
 * by a worker with SANDBOX=on and one with SANDBOX=off, interleaved; and an app's start (spawn to
 * its first 200) in and out of the sandbox. Writes bench/results/sandbox.json.
 *
 *   npm run bench:sandbox          (BENCH_RUNS, default 3; BENCH_REQUIREMENTS)
 */
import { mkdir, writeFile, readFile, rm, chown } from "node:fs/promises";
import path from "node:path";
import { freePort, loadWorkerConfig, createLogger, packDirectory } from "@slipway/shared";
import { hostToolchains, sandboxPath, spawnSandboxed, type SandboxMode, type SandboxSpec } from "@slipway/shared/sandbox";
import { start as startBuildWorker } from "@slipway/build-worker";
import { startBenchStack } from "./stack";
import { benchDir, machine, median, runBench, since, timeBuild, writeResult } from "./lib";

const REQUIREMENTS = process.env.BENCH_REQUIREMENTS ?? "Django==5.1.*\nrequests==2.32.*\n";
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const APP_STARTS = 21;

async function main() {
  const work = await benchDir("sandbox");
  const stack = await startBenchStack(work, {}, { worker: false });
  const logger = createLogger("bench", "warn");
  const builds: Record<SandboxMode, { cold: number[]; warm: number[] }> = { on: { cold: [], warm: [] }, off: { cold: [], warm: [] } };
  try {
    const src = path.join(work, "src");
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), "print('bench')\n");
    await writeFile(path.join(src, "requirements.txt"), REQUIREMENTS);
    const body = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);


    for (let run = 0; run < RUNS; run++) {
      // Alternate which mode goes first, so neither always gets the warmer machine.
      const order: SandboxMode[] = run % 2 === 0 ? ["off", "on"] : ["on", "off"];
      for (const mode of order) {
        const worker = await startBuildWorker(loadWorkerConfig({ ...stack.env, SANDBOX: mode }), logger);
        try {
          const app = `bench-sandbox-${mode}-${run}`;
          const cold = await timeBuild(stack.base, () => fetch(`${stack.base}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body }));
          const warm = await timeBuild(stack.base, () => fetch(`${stack.base}/v1/apps/${app}/rebuild`, { method: "POST" }));
          builds[mode].cold.push(cold);
          builds[mode].warm.push(warm);
          console.log(`run ${run + 1} sandbox ${mode}: cold ${cold.toFixed(2)} s, warm ${warm.toFixed(2)} s`);
        } finally {
          await worker.close(1000);
        }
      }
    }

    const appStarts = await measureAppStarts(work);
    const med = (values: number[]) => median(values);
    const overhead = (kind: "cold" | "warm") => med(builds.on[kind]) / med(builds.off[kind]) - 1;
    const result = {
      benchmark: "sandbox",
      date: new Date().toISOString(),
      machine: machine(),
      storage: stack.s3.kind,
      requirements: REQUIREMENTS.trim().split("\n"),
      runs: RUNS,
      note: "wall time from the upload (cold) or rebuild request (warm) to succeeded, medians over interleaved runs; every build has a fresh HOME in both modes, so pip downloads afresh in each cold build. App start: spawn of a small Python HTTP app to its first 200, medians of 21, the same PATH in both modes.",
      builds: {
        cold: { sandboxOnSeconds: med(builds.on.cold), sandboxOffSeconds: med(builds.off.cold), overheadPercent: overhead("cold") * 100 },
        warm: { sandboxOnSeconds: med(builds.on.warm), sandboxOffSeconds: med(builds.off.warm), overheadPercent: overhead("warm") * 100 },
        samples: builds,
      },
      appStart: appStarts,
    };
    await writeResult("sandbox", result);
    console.log(JSON.stringify({ builds: { cold: result.builds.cold, warm: result.builds.warm }, appStart: { on: appStarts.sandboxOnMs, off: appStarts.sandboxOffMs, overheadMs: appStarts.overheadMs } }));
  } finally {
    await stack.close();
  }
}

const APP = `
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

async function measureAppStarts(work: string) {
  const appDir = path.join(work, "app");
  await mkdir(appDir, { recursive: true });
  await writeFile(path.join(appDir, "app.py"), APP);
  await chown(appDir, 230_000, 230_000);
  const toolchains = await hostToolchains();
  const spec: SandboxSpec = {
    name: "bench-app",
    uid: 230_000,
    writable: [appDir],
    readOnly: toolchains,
    network: "host",
    limits: { memoryBytes: 512 * 1024 * 1024, maxProcesses: 256, maxFileBytes: 1024 ** 3 },
  };
  const samples: Record<SandboxMode, number[]> = { on: [], off: [] };
  for (let i = 0; i < APP_STARTS; i++) {
    for (const mode of (i % 2 === 0 ? ["off", "on"] : ["on", "off"]) as SandboxMode[]) {
      const port = await freePort();
      const start = process.hrtime.bigint();
      const app = spawnSandboxed(
        // One PATH for both, straight to the interpreter: the host's may start with pyenv's shims,
        // which would put their cost on the unsandboxed side.
        { command: "python3", args: ["app.py"], cwd: appDir, env: { PATH: sandboxPath(toolchains), PORT: String(port), HOME: appDir } },
        spec,
        mode,
      );
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.status === 200, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      samples[mode].push(since(start) * 1000);
      app.kill();
      await app.exited;
    }
  }
  await rm(appDir, { recursive: true, force: true });
  const on = median(samples.on);
  const off = median(samples.off);
  return { sandboxOnMs: on, sandboxOffMs: off, overheadMs: on - off, samples };
}

runBench("sandbox", main);
