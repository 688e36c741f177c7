/**
 * bench/load: 100 small builds queued at once, consumed by 1 and then by 2 build worker processes:
 * every build must succeed, each app's release numbers must be distinct and consecutive, and the
 * queue must drain. Reports builds/min for each and the scaling ratio. Writes bench/results/load.json.
 *
 *   npm run bench:load            (BENCH_BUILDS overrides the 100)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createLogger, packDirectory } from "@slipway/shared";
import { startRedisServer, startS3Server, stopChild } from "@slipway/shared/embedded";
import { startServices } from "../test/harness/services";
import { benchDir, machine, repoRoot, runBench, since, writeResult } from "./lib";

const BUILDS = Number(process.env.BENCH_BUILDS ?? 100);
const APPS = 5;

async function main() {
  const work = await benchDir("load");
  const [redis, s3] = await Promise.all([startRedisServer(), startS3Server({ dir: path.join(work, "s3") })]);
  const baseEnv = { REDIS_URL: redis.url, S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, LOG_LEVEL: "warn", MAX_QUEUED_BUILDS: "100000", GC_INTERVAL_S: "0" };
  const logger = createLogger("bench", "warn");
  const runs: Record<string, unknown>[] = [];
  // A small Node app: package.json without dependencies, so the build is npm's own overhead.
  const src = path.join(work, "src");
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, "package.json"), JSON.stringify({ name: "small", version: "1.0.0", scripts: { start: "node server.js" } }));
  await writeFile(path.join(src, "server.js"), "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n");
  const body = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);

  try {
    for (const workers of [1, 2]) {
      const env = { ...baseEnv, QUEUE_PREFIX: `load-${workers}` };
      // The workers are processes of their own, started once everything is queued.
      const stack = await startServices(env, logger, { worker: false });
      const { api, baseUrl: base } = stack;
      const apps = Array.from({ length: APPS }, (_, i) => `load${workers}-app-${i}`);

      // Queue everything first, then start the workers: the measurement is pure consumption.
      const ids = await Promise.all(
        Array.from({ length: BUILDS }, async (_, i) => {
          const response = await fetch(`${base}/v1/apps/${apps[i % APPS]}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body });
          if (response.status !== 202) throw new Error(`upload ${i} answered ${response.status}`);
          return ((await response.json()) as { id: string }).id;
        }),
      );
      const children: ChildProcess[] = [];
      const start = process.hrtime.bigint();
      for (let w = 0; w < workers; w++) {
        children.push(
          spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "services/build-worker/src/main.ts")], {
            cwd: repoRoot,
            env: { ...process.env, ...env, SCRATCH_DIR: path.join(work, `scratch-${workers}-${w}`), WORKER_CONCURRENCY: "1" },
            stdio: ["ignore", "ignore", "inherit"],
          }),
        );
      }
      for (;;) {
        const counts = await api.buildQueue.getJobCounts("waiting", "active", "delayed", "completed", "failed");
        if ((counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) === 0) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const seconds = since(start);
      await Promise.all(children.map((child) => stopChild(child)));

      const builds = await Promise.all(ids.map(async (id) => (await (await fetch(`${base}/v1/builds/${id}`)).json()) as { status: string; app: string; release?: number }));
      const failed = builds.filter((b) => b.status !== "succeeded").length;
      const releasesOk = await Promise.all(
        apps.map(async (app) => {
          const versions = ((await (await fetch(`${base}/v1/apps/${app}/releases?limit=100`)).json()) as { version: number }[]).map((r) => r.version);
          const expected = Array.from({ length: BUILDS / APPS }, (_, i) => BUILDS / APPS - i);
          return JSON.stringify(versions) === JSON.stringify(expected);
        }),
      );
      const run = { workers, builds: BUILDS, failed, releaseNumbersStrictlyOrdered: releasesOk.every(Boolean), seconds, buildsPerMinute: (BUILDS / seconds) * 60 };
      console.log(JSON.stringify(run));
      runs.push(run);
      await stack.close();
    }
    const [one, two] = runs as { buildsPerMinute: number }[];
    await writeResult("load", {
      benchmark: "load",
      date: new Date().toISOString(),
      machine: machine(),
      storage: s3.kind,
      note: `${BUILDS} small Node builds (no dependencies) over ${APPS} apps, queued before the workers start; workers are processes with WORKER_CONCURRENCY=1`,
      runs,
      scaling: two!.buildsPerMinute / one!.buildsPerMinute,
    });
  } finally {
    await Promise.all([redis.stop(), s3.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

runBench("load", main);
