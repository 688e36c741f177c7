/**
 * bench/restore: how long a runtime agent takes to restore a realistic artifact as the worker
 * packs it (sealed, with chunk digests whose record the worker pins in Redis: download with each
 * chunk checked before tar sees it + extraction + venv relocation + marker), packed as zstd and
 * as gzip, against the command-line pipelines fetching the same object from the same server
 * (`curl | zstd -dc | tar -x`, `curl | tar -xz`), with the same pipelines from a local file for
 * reference. Writes bench/results/restore.json.
 *
 *   npm run bench:restore            (BENCH_PACKAGES overrides the pip packages installed)
 */
import { execFileSync, spawn } from "node:child_process";
import { createReadStream, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createLogger, ObjectStore, outputRecordSha256, packDirectory, sealTree, serializeManifest, storageKeys, type BuildManifest, type Compression, type PackedArchive } from "@slipway/shared";
import { startS3Server } from "@slipway/shared/embedded";
import { overlayUsable } from "@slipway/shared/sandbox";
import { buildAll, FETCH_HELPER_OUT } from "../scripts/build";
import { Restorer, type ReleaseLayout } from "../services/runtime-agent/src/restore";
import { appWithVenv, benchDir, benchPackages, machine, median, runBench, since, treeStats, writeResult } from "./lib";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const COMPRESSIONS: Compression[] = ["zstd", "gzip"];
const FILE_NAMES: Record<Compression, string> = { zstd: "output.tar.zst", gzip: "output.tar.gz" };

/** The same extraction GNU tar does, fed from the server (`$SOURCE` a URL) or a local file. */
const PIPELINES: Record<Compression, { server: string; local: string }> = {
  zstd: { server: 'curl -fsS "$SOURCE" | zstd -dc | tar -xf - -C "$TARGET"', local: 'zstd -dc "$SOURCE" | tar -xf - -C "$TARGET"' },
  gzip: { server: 'curl -fsS "$SOURCE" | tar -xzf - -C "$TARGET"', local: 'tar -xzf "$SOURCE" -C "$TARGET"' },
};

const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/**
 * CPU seconds this process and its reaped children (zstd, tar, the pipelines' shells and theirs)
 * have used: on a loaded machine wall time says more about the neighbours than about the work.
 * MinIO's share is the same for every contender and not counted.
 */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  // /proc/self/stat: the fields after the parenthesised command name; cutime and cstime are the 14th and 15th.
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  return (own.user + own.system) / 1e6 + (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/** Wall and CPU seconds `work` takes. */
async function measure(work: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const [start, cpuStart] = [process.hrtime.bigint(), cpuSeconds()];
  await work();
  return { wall: since(start), cpu: cpuSeconds() - cpuStart };
}

/** Asynchronously, so nothing in this process (the store's client) stalls while it runs. */
function runShell(script: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-o", "pipefail", "-ec", script], { env: { ...process.env, ...env }, stdio: "inherit" });
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited ${code}`))));
  });
}

type Contender = "agent" | "agentNode" | "serverPipeline" | "localPipeline";
type Timings = Record<Contender, { wall: number; cpu: number }[]>;

async function main() {
  // The agent as it ships: with slipway-fetch beside it (Go is needed to build it).
  if (!(await buildAll())) throw new Error("slipway-fetch was not built (no Go): the agent restore this measures needs it");
  const helper = path.resolve(FETCH_HELPER_OUT);
  const work = await benchDir("restore");
  const s3 = await startS3Server({ dir: path.join(work, "s3"), engine: "minio" });
  try {
    const store = new ObjectStore({ S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_BUCKET: "bench", S3_REGION: "us-east-1" });
    await store.ensureBucket();

    // A build as the worker makes it: source + antenv with real packages, packed whole, once per compression.
    const app = "bench";
    const buildDir = path.join(work, "build");
    const packages = benchPackages();
    console.log(`installing ${packages.join(" ")} into a virtualenv ...`);
    await appWithVenv(buildDir, packages);
    const tree = treeStats(buildDir);
    // As the worker packs a build's output: with the modes a restore gives it.
    await sealTree(buildDir);
    const packed = {} as Record<Compression, PackedArchive & { buildId: string }>;
    // What the worker pins in each build's record in Redis (see outputRecordSha256).
    const pins = new Map<string, string | undefined>();
    for (const compression of COMPRESSIONS) {
      const buildId = `bench-restore-${compression}`;
      const fileName = FILE_NAMES[compression];
      const archive = await packDirectory(buildDir, path.join(work, fileName), compression);
      packed[compression] = { ...archive, buildId };
      await store.putStream(storageKeys.artifact(app, buildId, fileName), createReadStream(archive.file));
      const manifest: BuildManifest = {
        platformName: "python",
        pythonVersion: "3",
        virtualEnvName: "antenv",
        compressDestinationDir: true,
        sourceDirectoryInBuildContainer: buildDir,
        buildId,
        outputFileName: fileName,
        outputSha256: archive.sha256,
        outputBytes: archive.bytes,
        outputUnpackedBytes: archive.unpackedBytes,
        outputEntryCount: archive.entries,
        outputChunkSha256s: archive.chunkSha256s,
        outputChunkBytes: archive.chunkBytes,
        outputModesSealed: true,
        other: {},
      };
      pins.set(buildId, outputRecordSha256(manifest));
      await store.putBuffer(storageKeys.manifest(app, buildId), serializeManifest(manifest));
      console.log(`${fileName}: ${tree.files} files, ${(tree.bytes / 1e6).toFixed(1)} MB unpacked, ${(archive.bytes / 1e6).toFixed(1)} MB packed`);
    }

    // As an agent restores: over an overlay where a sandbox can mount one, else a hard-link copy.
    const layout: ReleaseLayout = (await overlayUsable(path.join(work, "overlay-probe"))) ? "overlay" : "copy";
    console.log(`release layout: ${layout}`);
    const loadBefore = os.loadavg();
    const timings = Object.fromEntries(COMPRESSIONS.map((c) => [c, { agent: [], agentNode: [], serverPipeline: [], localPipeline: [] }])) as unknown as Record<Compression, Timings>;
    // Interleaved, so load from elsewhere on the machine falls on every contender alike.
    for (let run = 0; run < RUNS; run++) {
      for (const compression of COMPRESSIONS) {
        const { buildId, file } = packed[compression];
        const times = timings[compression];
        // The agent as it ships (slipway-fetch), and with FETCH_HELPER=node (node's own chunk check).
        for (const [contender, fetchHelper] of [["agent", helper], ["agentNode", "node"]] as const) {
          const runtimeRoot = path.join(work, `runtime-${run}-${compression}-${contender}`);
          // A host cache of its own: every run extracts (into the cache, then hard-links its copy), as the first agent on a host does.
          const limits = { MAX_RESTORE_BYTES: 8 * 1024 ** 3, MAX_RESTORE_ENTRIES: 500_000 };
          const config = { RUNTIME_ROOT: runtimeRoot, HOST_CACHE_DIR: path.join(runtimeRoot, "host-cache"), FETCH_HELPER: fetchHelper, ...limits };
          const restorer = new Restorer(store, config, createLogger("bench-restore", "silent"), undefined, async (id) => pins.get(id));
          times[contender].push(
            await measure(async () => {
              const began = performance.now();
              // BENCH_STAGES=1 prints when each step of the restore began, to see where its time goes.
              const onStage = (stage: string) => process.env.BENCH_STAGES && console.log(`  ${(performance.now() - began).toFixed(0).padStart(5)} ms  ${stage}`);
              if ((await restorer.restore(app, buildId, onStage, layout)).reused) throw new Error("a fresh runtime root must not reuse a restore");
              onStage("done");
            }),
          );
          // The host cache entry's fingerprint, taken after the release is ready: not timed, but never overlapping the pipelines.
          await restorer.settled();
          await rm(runtimeRoot, { recursive: true, force: true });
        }

        const url = await store.presignedGetUrl(storageKeys.artifact(app, buildId, FILE_NAMES[compression]));
        for (const [where, source] of [["serverPipeline", url], ["localPipeline", file]] as const) {
          const target = path.join(work, `${where}-${run}-${compression}`);
          await mkdir(target);
          times[where].push(await measure(() => runShell(PIPELINES[compression][where === "serverPipeline" ? "server" : "local"], { SOURCE: source, TARGET: target })));
          await rm(target, { recursive: true, force: true });
        }
        const last = (contender: Contender) => `${times[contender].at(-1)!.wall.toFixed(2)} s (cpu ${times[contender].at(-1)!.cpu.toFixed(2)} s)`;
        console.log(`run ${run + 1} ${compression}: agent ${last("agent")}, agent with FETCH_HELPER=node ${last("agentNode")}, curl pipeline ${last("serverPipeline")}, local pipeline ${last("localPipeline")}`);
      }
    }

    const summarize = (values: number[]) => ({ median: median(values), all: values });
    const seconds = (runs: { wall: number; cpu: number }[]) => ({ wall: summarize(runs.map((r) => r.wall)), cpu: summarize(runs.map((r) => r.cpu)) });
    const perCompression = Object.fromEntries(
      COMPRESSIONS.map((compression) => {
        const [agent, agentNode, curl, local] = [seconds(timings[compression].agent), seconds(timings[compression].agentNode), seconds(timings[compression].serverPipeline), seconds(timings[compression].localPipeline)];
        return [
          compression,
          {
            packedBytes: packed[compression].bytes,
            agentRestoreSeconds: agent,
            agentNodeRestoreSeconds: agentNode,
            curlPipelineSeconds: curl,
            localPipelineSeconds: local,
            ratio: agent.wall.median / curl.wall.median,
            cpuRatio: agent.cpu.median / curl.cpu.median,
            nodeRatio: agentNode.wall.median / curl.wall.median,
            pipelines: PIPELINES[compression],
          },
        ];
      }),
    );
    await writeResult("restore", {
      benchmark: "restore",
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { before: loadBefore, after: os.loadavg() },
      storage: s3.kind,
      directory: path.dirname(work),
      artifact: { packages, files: tree.files, unpackedBytes: tree.bytes },
      runs: RUNS,
      layout,
      ...perCompression,
      note: "agent = slipway-fetch downloading with each 4 MiB chunk checked against the manifest's chunk digests (its record pinned, as the worker pins it in the build's Redis record) before GNU tar extracts it into the host cache (the tree packed sealed: no seal walk; its fingerprint is taken after the restore returns, not timed, before the pipelines run) + the instance's release directory (layout overlay: the tree checked and the venv's relocated files written beside it; copy: a checked hard-link copy) + venv relocation + marker; ratio = agent / curl pipeline from the same server (median wall seconds; target ≤ 1.1); cpuRatio the same for CPU seconds of this process and its children (MinIO not counted), steadier on a loaded machine; agentNode / nodeRatio: the same restore with FETCH_HELPER=node (node downloads and checks the chunks itself)",
    });
    console.log(JSON.stringify(Object.fromEntries(COMPRESSIONS.map((c) => [c, { ratio: perCompression[c]!.ratio, cpuRatio: perCompression[c]!.cpuRatio, nodeRatio: perCompression[c]!.nodeRatio }]))));
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

runBench("restore", main);
