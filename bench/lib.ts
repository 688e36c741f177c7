import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
export const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * A scratch directory on tmpfs when there is one, as in the design notes' measurements: disk
 * writeback on this kind of machine varies by seconds between runs and drowns what is measured.
 */
export async function benchDir(name: string): Promise<string> {
  const base = process.env.BENCH_DIR ?? (existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir());
  return mkdtemp(path.join(base, `slipway-bench-${name}-`));
}

/** The packages a realistic Python app's venv holds: thousands of files. */
export const benchPackages = () => (process.env.BENCH_PACKAGES ?? "django==5.1.* botocore==1.35.* numpy==2.1.*").split(/\s+/);

/** An app directory with `antenv` holding `packages`, built as the worker builds it. */
export async function appWithVenv(dir: string, packages: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "app.py"), "print('bench')\n");
  execFileSync("python3", ["-m", "venv", path.join(dir, "antenv")]);
  execFileSync(path.join(dir, "antenv/bin/python"), ["-m", "pip", "install", "-q", ...packages], {
    stdio: "inherit",
    env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" },
  });
}

export function treeStats(dir: string): { files: number; bytes: number } {
  const files = Number(execFileSync("sh", ["-c", `find '${dir}' -type f | wc -l`], { encoding: "utf8" }).trim());
  const bytes = Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);
  return { files, bytes };
}

/** Writes `bench/results/<name>.json`; BENCH_RESULT names another file, for a variant run (a setting changed). */
export async function writeResult(name: string, result: object): Promise<void> {
  await mkdir(path.join(repoRoot, "bench/results"), { recursive: true });
  await writeFile(path.join(repoRoot, "bench/results", `${process.env.BENCH_RESULT ?? name}.json`), `${JSON.stringify(result, null, 2)}\n`);
}

export const machine = () => ({ cpus: os.cpus().length, node: process.version });

/**
 * Seconds from sending `request` (an upload or a rebuild, answered 202 with the build) to that
 * build succeeding; throws when it fails.
 */
export async function timeBuild(base: string, request: () => Promise<Response>): Promise<number> {
  const start = process.hrtime.bigint();
  const response = await request();
  if (response.status !== 202) throw new Error(`answered ${response.status}: ${await response.text()}`);
  const { id } = (await response.json()) as { id: string };
  for (;;) {
    const build = (await (await fetch(`${base}/v1/builds/${id}`)).json()) as { status: string; error?: string };
    if (build.status === "failed") throw new Error(`build ${id} failed: ${build.error}`);
    if (build.status === "succeeded") return since(start);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Runs a benchmark's `main` and exits: 0 once it is done (a lingering keep-alive socket must not
 * hold a finished benchmark open), 1 with one line naming the benchmark when it fails.
 */
export function runBench(name: string, main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: Error) => {
      console.error(`bench/${name} failed: ${error.message}`);
      process.exit(1);
    },
  );
}
