/**
 * bench/pack: pack time and size of one build output (a real virtualenv) with Slipway's gzip and
 * zstd packers against `tar -czf`, and the unpack time of each. Writes bench/results/pack.json.
 *
 *   npm run bench:pack            (BENCH_PACKAGES, BENCH_RUNS override)
 */
import { execFileSync } from "node:child_process";
import { createReadStream, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { extractStream, packDirectory, type Compression } from "@slipway/shared";
import { appWithVenv, benchDir, benchPackages, machine, median, runBench, since, treeStats, writeResult } from "./lib";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function main() {
  const work = await benchDir("pack");
  try {
    const tree = path.join(work, "app");
    console.log(`installing ${benchPackages().join(" ")} ...`);
    await appWithVenv(tree, benchPackages());
    const stats = treeStats(tree);
    console.log(`tree: ${stats.files} files, ${(stats.bytes / 1e6).toFixed(1)} MB`);

    const measure = async (label: string, pack: (file: string) => Promise<void>, unpack: (file: string, dir: string) => Promise<void>, ext: string) => {
      const packTimes: number[] = [];
      const unpackTimes: number[] = [];
      let bytes = 0;
      for (let run = 0; run < RUNS; run++) {
        const file = path.join(work, `out-${label}${ext}`);
        let start = process.hrtime.bigint();
        await pack(file);
        packTimes.push(since(start));
        bytes = statSync(file).size;
        const dir = path.join(work, `unpacked-${label}-${run}`);
        start = process.hrtime.bigint();
        await unpack(file, dir);
        unpackTimes.push(since(start));
        await rm(dir, { recursive: true, force: true });
        await rm(file, { force: true });
      }
      console.log(`${label}: pack ${median(packTimes).toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB, unpack ${median(unpackTimes).toFixed(2)} s`);
      return { packSeconds: median(packTimes), unpackSeconds: median(unpackTimes), bytes, packRuns: packTimes, unpackRuns: unpackTimes };
    };

    const slipway = (compression: Compression) =>
      measure(
        `slipway-${compression}`,
        async (file) => void (await packDirectory(tree, file, compression)),
        async (file, dir) => void (await extractStream(createReadStream(file), dir, { compression, allowExternalSymlinks: true })),
        compression === "zstd" ? ".tar.zst" : ".tar.gz",
      );
    const gnuGzip = await measure(
      "tar-czf",
      async (file) => void execFileSync("tar", ["-czf", file, "-C", tree, "."]),
      async (file, dir) => {
        execFileSync("mkdir", ["-p", dir]);
        execFileSync("tar", ["-xzf", file, "-C", dir]);
      },
      ".tar.gz",
    );
    const zstd = await slipway("zstd");
    const gzip = await slipway("gzip");

    await writeResult("pack", {
      benchmark: "pack",
      date: new Date().toISOString(),
      machine: machine(),
      directory: work,
      tree: { packages: benchPackages(), ...stats },
      runs: RUNS,
      "tar -czf (GNU tar + gzip)": gnuGzip,
      "slipway zstd (GNU tar | zstd -3 -T0; unpack: zstd -dc | vetted tar -x)": zstd,
      "slipway gzip (node tar + zlib; unpack: vetted tar -xz)": gzip,
      zstdPackSpeedupVsTarCzf: gnuGzip.packSeconds / zstd.packSeconds,
      zstdUnpackSpeedupVsTarXzf: gnuGzip.unpackSeconds / zstd.unpackSeconds,
      zstdSizeVsGzip: zstd.bytes / gnuGzip.bytes,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

runBench("pack", main);
