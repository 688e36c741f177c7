/**
 * bench/api: requests/s and p50/p99 latency of `GET /v1/builds/:id` with 50 concurrent clients,
 * and of `POST /v1/apps/:app/builds` with a 10 KB source, against the API as its own process on a
 * real Redis and S3 server (loopback only). Writes bench/results/api.json.
 *
 *   npm run bench:api            (BENCH_SECONDS overrides the 10 s per measurement)
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rm, writeFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import autocannon from "autocannon";
import { freePort, packDirectory } from "@slipway/shared";
import { startRedisServer, startS3Server, stopChild } from "@slipway/shared/embedded";
import { benchDir, machine, repoRoot, runBench, writeResult } from "./lib";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 50;

function summarize(result: autocannon.Result) {
  return {
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

async function main() {
  const work = await benchDir("api");
  const [redis, s3] = await Promise.all([startRedisServer(), startS3Server({ dir: path.join(work, "s3") })]);
  const port = await freePort();
  const api = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "services/api/src/main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      S3_ENDPOINT: s3.url,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      API_PORT: String(port),
      API_HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      // No worker drains the queue here: let every upload in.
      MAX_QUEUED_BUILDS: "100000000",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; ; i++) {
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
      if (i > 200) throw new Error("the API did not come up");
      await new Promise((r) => setTimeout(r, 100));
    }
    // A 10 KB source: incompressible bytes, so the tar.gz really is about 10 KB.
    const src = path.join(work, "src");
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, "app.py"), "print('bench')\n");
    await writeFile(path.join(src, "data.bin"), randomBytes(10 * 1024 - 600));
    const archive = await readFile((await packDirectory(src, path.join(work, "src.tar.gz"))).file);

    const first = await fetch(`${base}/v1/apps/bench/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body: archive });
    const { id } = (await first.json()) as { id: string };

    console.log(`GET /v1/builds/:id, ${CONNECTIONS} connections, ${SECONDS} s ...`);
    const get = await autocannon({ url: `${base}/v1/builds/${id}`, connections: CONNECTIONS, duration: SECONDS });
    console.log(`POST /v1/apps/:app/builds (${archive.length} bytes), ${CONNECTIONS} connections, ${SECONDS} s ...`);
    const post = await autocannon({
      url: `${base}/v1/apps/bench/builds`,
      method: "POST",
      headers: { "Content-Type": "application/gzip" },
      body: archive,
      connections: CONNECTIONS,
      duration: SECONDS,
    });
    const result = {
      benchmark: "api",
      date: new Date().toISOString(),
      machine: machine(),
      storage: s3.kind,
      setup: `API as its own process; autocannon in the bench process; ${CONNECTIONS} connections, ${SECONDS} s each; loopback`,
      getBuild: summarize(get),
      postBuild: { sourceBytes: archive.length, ...summarize(post) },
    };
    await writeResult("api", result);
    console.log(JSON.stringify({ get: result.getBuild, post: result.postBuild }, null, 2));
  } finally {
    await stopChild(api);
    await Promise.all([redis.stop(), s3.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

runBench("api", main);
