/**
 * bench/install: the same Django app built cold with uv (the default) and with pip
 * (PYTHON_INSTALLER=pip), alternately, through the real API and build worker on a real Redis and
 * S3 server, never from the dependency cache (the first build of each app has none, the later ones
 * ask noCache). Every build has a fresh private home, so neither installer has a download cache:
 * each build fetches from the package index. Writes bench/results/install.json with the medians
 * and uv's time as a fraction of pip's (the target is at most 0.45).
 *
 *   npx tsx bench/install.ts     (BENCH_REQUIREMENTS overrides the requirements, BENCH_RUNS the runs)
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { packDirectory, storageKeys, type BuildResponse as BuildView } from "@slipway/shared";
import { startBenchStack } from "./stack";
import { benchDir, machine, median, runBench, since, writeResult } from "./lib";

const REQUIREMENTS = process.env.BENCH_REQUIREMENTS ?? "Django==5.1.*\nrequests==2.32.*\ngunicorn==23.*\nwhitenoise==6.*\n";
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const INSTALLERS = { uv: "bench-install-uv", pip: "bench-install-pip" } as const;
type Installer = keyof typeof INSTALLERS;

async function main() {
  const work = await benchDir("install");
  const stack = await startBenchStack(work);
  const { base, api } = stack;
  try {
    await api.apps.upsert(INSTALLERS.pip, { buildEnv: { PYTHON_INSTALLER: "pip" } });
    const src = path.join(work, "src");
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), "print('bench')\n");
    await writeFile(path.join(src, "requirements.txt"), REQUIREMENTS);
    const body = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);

    const wait = async (response: Response): Promise<BuildView> => {
      if (response.status !== 202) throw new Error(`answered ${response.status}: ${await response.text()}`);
      const { id } = (await response.json()) as BuildView;
      for (;;) {
        const build = (await (await fetch(`${base}/v1/builds/${id}`)).json()) as BuildView;
        if (build.status === "failed") throw new Error(`build ${id} failed: ${build.error}`);
        if (build.status === "succeeded") return build;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const coldBuild = async (installer: Installer, first: boolean) => {
      const app = INSTALLERS[installer];
      const request = first
        ? () => fetch(`${base}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body })
        : () => fetch(`${base}/v1/apps/${app}/rebuild`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ noCache: true }) });
      const start = process.hrtime.bigint();
      const build = await wait(await request());
      const wallSeconds = since(start);
      const log = await api.store.getText(storageKeys.buildLog(app, build.id));
      // Each app must have run the installer it is measured as, and installed, not restored.
      const ranUv = log.includes("(uv pip install;") && !log.includes("uv could not install");
      if (ranUv !== (installer === "uv") || log.includes("Dependency cache hit")) throw new Error(`build ${build.id} did not install with ${installer}:\n${log}`);
      return { wallSeconds, buildSeconds: (Date.parse(build.finishedAt!) - Date.parse(build.startedAt!)) / 1000 };
    };

    const runs: Record<Installer, { wallSeconds: number; buildSeconds: number }[]> = { uv: [], pip: [] };
    const loadBefore = os.loadavg();
    for (let run = 0; run < RUNS; run++) {
      // Alternating, so that a change in the machine's load falls on both alike.
      for (const installer of (run % 2 ? ["uv", "pip"] : ["pip", "uv"]) as Installer[]) {
        const timing = await coldBuild(installer, run === 0);
        runs[installer].push(timing);
        console.log(`${installer} run ${run + 1}: build ${timing.buildSeconds.toFixed(2)} s, wall ${timing.wallSeconds.toFixed(2)} s`);
      }
    }
    const summary = (installer: Installer) => ({
      medianBuildSeconds: median(runs[installer].map((r) => r.buildSeconds)),
      medianWallSeconds: median(runs[installer].map((r) => r.wallSeconds)),
      runs: runs[installer],
    });
    const uv = summary("uv");
    const pip = summary("pip");
    const result = {
      benchmark: "install",
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { before: loadBefore, after: os.loadavg() },
      requirements: REQUIREMENTS.trim().split("\n"),
      runsEach: RUNS,
      note: "cold builds of the same requirements.txt app, no dependency cache, no installer download cache (each build's home is fresh); uv = the default (uv pip install), pip = PYTHON_INSTALLER=pip; alternating runs; build = the worker's startedAt..finishedAt (venv, install, pack, upload), wall = request to succeeded. A warm-uv-cache figure is not measured: builds never share uv's cache.",
      uv,
      pip,
      uvToPipBuildRatio: uv.medianBuildSeconds / pip.medianBuildSeconds,
      target: "uvToPipBuildRatio <= 0.45",
    };
    await writeResult("install", result);
    console.log(JSON.stringify({ uv: uv.medianBuildSeconds, pip: pip.medianBuildSeconds, ratio: result.uvToPipBuildRatio }));
  } finally {
    await stack.close();
  }
}

// Something of the closed stack keeps the event loop alive after main (the process never ended): exit.
runBench("install", main);
