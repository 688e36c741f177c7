/**
 * bench/deploy: a second deploy of a 50 MB app with one changed file, through the real `slipway`
 * binary: bytes sent and time with resource matching against a full upload (`--no-match`).
 * Writes bench/results/deploy.json.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { startBenchStack } from "./stack";
import { benchDir, machine, repoRoot, runBench, since, writeResult } from "./lib";

const FILES = 50;
const FILE_BYTES = 1024 * 1024;

interface DeployOutput {
  build: { id: string; status: string };
  upload: { bytes: number; files: number; sentFiles: number; matchedFiles: number; seconds: number };
}

async function main() {
  const work = await benchDir("deploy");
  const stack = await startBenchStack(work);
  const { base, s3 } = stack;
  const cli = (args: string[]) =>
    new Promise<{ output: DeployOutput; seconds: number }>((resolve, reject) => {
      const start = process.hrtime.bigint();
      execFile(path.join(repoRoot, "node_modules/.bin/slipway"), [...args, "--json"], { env: { ...process.env, SLIPWAY_URL: base }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`slipway failed: ${stderr}`));
        else resolve({ output: JSON.parse(stdout) as DeployOutput, seconds: since(start) });
      });
    });
  try {
    const app = "bench-deploy";
    const dir = path.join(work, "app");
    await mkdir(path.join(dir, "assets"), { recursive: true });
    await writeFile(path.join(dir, "app.py"), "print('v1')\n");
    for (let i = 0; i < FILES; i++) await writeFile(path.join(dir, "assets", `blob-${i}.bin`), randomBytes(FILE_BYTES));

    console.log("first deploy (full upload) ...");
    const first = await cli(["deploy", dir, "--app", app, "--create"]);
    await writeFile(path.join(dir, "app.py"), "print('v2')\n");
    console.log("second deploy, one file changed, with resource matching ...");
    const matched = await cli(["deploy", dir, "--app", app, "--detach"]);
    console.log("the same deploy as a full upload (--no-match) ...");
    const full = await cli(["deploy", dir, "--app", app, "--no-match", "--detach"]);
    const result = {
      benchmark: "deploy",
      date: new Date().toISOString(),
      machine: machine(),
      storage: s3.kind,
      app: { files: FILES + 1, bytes: FILES * FILE_BYTES + 12 },
      note: "times are the whole `slipway deploy` command (node start-up, hashing or packing, upload, server-side assembly, enqueue), loopback; the first deploy also waits for its build, whose worker caches the files",
      firstDeploy: { uploadedBytes: first.output.upload.bytes, seconds: first.seconds },
      secondDeployMatched: { uploadedBytes: matched.output.upload.bytes, sentFiles: matched.output.upload.sentFiles, matchedFiles: matched.output.upload.matchedFiles, seconds: matched.seconds },
      secondDeployFull: { uploadedBytes: full.output.upload.bytes, sentFiles: full.output.upload.sentFiles, seconds: full.seconds },
      bytesRatio: full.output.upload.bytes / matched.output.upload.bytes,
      timeRatio: full.seconds / matched.seconds,
    };
    await writeResult("deploy", result);
    console.log(JSON.stringify({ matched: result.secondDeployMatched, full: result.secondDeployFull }));
  } finally {
    await stack.close();
  }
}

runBench("deploy", main);
