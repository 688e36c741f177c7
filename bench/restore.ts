/**
 * bench/restore: how long a runtime agent takes to restore a realistic artifact (download +
 * sha256 verification + vetted extraction + venv relocation), against `curl | tar -xzf` (GNU
 * tar) fetching the same artifact from the same server. Writes bench/results/restore.json.
 *
 *   npm run bench:restore            (BENCH_PACKAGES overrides the pip packages installed)
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createLogger, ObjectStore, packDirectory, serializeManifest, storageKeys } from "@slipway/shared";
import { startS3Server } from "@slipway/shared/embedded";
import { Restorer } from "../services/runtime-agent/src/restore";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PACKAGES = (process.env.BENCH_PACKAGES ?? "django==5.1.* botocore==1.35.* numpy==2.1.*").split(/\s+/);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

function treeStats(dir: string): { files: number; bytes: number } {
  const files = Number(execFileSync("sh", ["-c", `find '${dir}' -type f | wc -l`], { encoding: "utf8" }).trim());
  const bytes = Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  return { files, bytes };
}

async function main() {
  // tmpfs by default, as in the design notes' measurements: disk writeback on this kind of
  // machine varies by seconds from run to run and would drown the difference being measured.
  const base = process.env.BENCH_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir());
  const work = await mkdtemp(path.join(base, "slipway-bench-restore-"));
  const s3 = await startS3Server({ dir: path.join(work, "s3") });
  try {
    const store = new ObjectStore({ S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_BUCKET: "bench", S3_REGION: "us-east-1" });
    await store.ensureBucket();

    // A build as the worker makes it: source + antenv with real packages, packed whole.
    const app = "bench";
    const buildId = "bench-restore-0001";
    const buildDir = path.join(work, "build", buildId);
    await mkdir(buildDir, { recursive: true });
    await writeFile(path.join(buildDir, "app.py"), "print('bench')\n");
    console.log(`installing ${PACKAGES.join(" ")} into a virtualenv ...`);
    execFileSync("python3", ["-m", "venv", path.join(buildDir, "antenv")]);
    execFileSync(path.join(buildDir, "antenv/bin/python"), ["-m", "pip", "install", "-q", ...PACKAGES], {
      stdio: "inherit",
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" },
    });
    const tree = treeStats(buildDir);
    const packed = await packDirectory(buildDir, path.join(work, "output.tar.gz"));
    await store.putBuffer(storageKeys.artifact(app, buildId), await readFile(packed.file));
    await store.putBuffer(
      storageKeys.manifest(app, buildId),
      serializeManifest({
        platformName: "python",
        pythonVersion: "3",
        virtualEnvName: "antenv",
        compressDestinationDir: true,
        sourceDirectoryInBuildContainer: buildDir,
        buildId,
        outputFileName: "output.tar.gz",
        outputSha256: packed.sha256,
        outputBytes: packed.bytes,
        other: {},
      }),
    );
    console.log(`artifact: ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB unpacked, ${(packed.bytes / 1e6).toFixed(1)} MB gzip`);

    const agentTimes: number[] = [];
    const baselineTimes: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const runtimeRoot = path.join(work, `runtime-${run}`);
      const start = process.hrtime.bigint();
      const restored = await new Restorer(store, { RUNTIME_ROOT: runtimeRoot, HOST_CACHE_DIR: path.join(runtimeRoot, "host-cache"), MAX_RESTORE_BYTES: 8 * 1024 ** 3, MAX_RESTORE_ENTRIES: 500_000 }, createLogger("bench-restore", "silent")).restore(app, buildId);
      agentTimes.push(seconds(start));
      if (restored.reused) throw new Error("a fresh runtime root must not reuse a restore");

      const target = path.join(work, `baseline-${run}`);
      await mkdir(target);
      const url = await store.presignedGetUrl(storageKeys.artifact(app, buildId));
      const baselineStart = process.hrtime.bigint();
      const result = spawnSync("sh", ["-c", `curl -fsS "$URL" | tar -xzf - -C "$TARGET"`], { env: { ...process.env, URL: url, TARGET: target }, stdio: "inherit" });
      baselineTimes.push(seconds(baselineStart));
      if (result.status !== 0) throw new Error("curl | tar failed");
      await Promise.all([rm(runtimeRoot, { recursive: true, force: true }), rm(target, { recursive: true, force: true })]);
      console.log(`run ${run + 1}: agent ${agentTimes.at(-1)!.toFixed(2)} s, curl | tar -xzf ${baselineTimes.at(-1)!.toFixed(2)} s`);
    }

    const result = {
      benchmark: "restore",
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, node: process.version },
      storage: s3.kind,
      directory: base,
      artifact: { packages: PACKAGES, files: tree.files, unpackedBytes: tree.bytes, gzipBytes: packed.bytes },
      runs: RUNS,
      agentRestoreSeconds: { median: median(agentTimes), all: agentTimes },
      curlTarSeconds: { median: median(baselineTimes), all: baselineTimes },
      ratio: median(agentTimes) / median(baselineTimes),
      note: "agent = download with sha256 check + vetted extraction + venv relocation + marker; baseline = curl | GNU tar -xzf from the same server",
    };
    await mkdir(path.join(root, "bench/results"), { recursive: true });
    await writeFile(path.join(root, "bench/results/restore.json"), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify({ agent: result.agentRestoreSeconds.median, curlTar: result.curlTarSeconds.median, ratio: result.ratio }));
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`bench/restore failed: ${(error as Error).message}`);
  process.exit(1);
});
