import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { isBuiltin } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { stopChild } from "@slipway/shared/embedded";
import { COMPILED_ENTRIES } from "../scripts/build";
import { compiledEntry } from "./harness/entries";
import { serviceEnv } from "./harness/env";
import { eventually } from "./harness/local-stack";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const run = promisify(execFile);
let work: string;

/** The environment of a production process: no loader hooks (tsx registers through NODE_OPTIONS). */
const plainEnv = () => Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "NODE_OPTIONS" && !name.startsWith("VITEST")));

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-compiled-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The npm packages a compiled file imports (Node's built-in modules left out). */
async function importedPackages(file: string): Promise<Set<string>> {
  const source = await readFile(path.join(root, file), "utf8");
  const names = new Set<string>();
  for (const [, specifier] of source.matchAll(/(?:^import[^"']*|\bimport\()\s*["']([^"']+)["']/gm)) {
    if (isBuiltin(specifier!) || specifier!.startsWith(".")) continue;
    names.add(specifier!.startsWith("@") ? specifier!.split("/").slice(0, 2).join("/") : specifier!.split("/")[0]!);
  }
  return names;
}

describe("npm run build", () => {
  it("compiles every service and the CLI, with the workspace's own code inside and only production packages outside", async () => {
    const lock = JSON.parse(await readFile(path.join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };
    for (const entry of COMPILED_ENTRIES) {
      const packages = await importedPackages(entry.out);
      // The agent and the CLI carry their packages inside (their starts are what users wait on).
      if (entry.packages === "bundled") expect([...packages], `${entry.out} loads nothing from node_modules`).toEqual([]);
      else expect(packages.size, entry.out).toBeGreaterThan(0);
      expect([...packages].filter((name) => name.startsWith("@slipway/")), `${entry.out} bundles the workspace`).toEqual([]);
      const workspace = entry.out.slice(0, entry.out.indexOf("/dist/"));
      for (const name of packages) {
        // What `npm ci --omit=dev` installs, the image's node_modules: tsx, esbuild and s3rver are not in it.
        const installed = lock.packages[`${workspace}/node_modules/${name}`] ?? lock.packages[`node_modules/${name}`];
        expect(installed, `${entry.out} imports ${name}, which is not installed`).toBeDefined();
        expect(installed!.dev, `${entry.out} imports ${name}, a development dependency`).toBeUndefined();
      }
    }
    for (const workspace of ["services/api", "services/build-worker", "services/runtime-agent"]) {
      const pkg = JSON.parse(await readFile(path.join(root, workspace, "package.json"), "utf8")) as { scripts: Record<string, string> };
      expect(pkg.scripts.start, `${workspace}'s npm start`).toBe("node dist/main.js");
    }
  });

  it("the compiled runtime agent starts and listens without tsx", async () => {
    const port = await freePort();
    const agent = spawn(process.execPath, [compiledEntry("runtime-agent")], {
      cwd: work,
      env: { ...plainEnv(), ...serviceEnv(), LOG_LEVEL: "info", QUEUE_PREFIX: `compiled-${randomUUID().slice(0, 8)}`, APP: "compiled-agent", INSTANCE_ID: "i-1", PORT: String(port), RUNTIME_ROOT: path.join(work, "runtime") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    agent.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    agent.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      // 503 until a release serves: any answer means the agent runs.
      const status = await eventually(async () => {
        if (agent.exitCode !== null) throw new Error(`the agent exited ${agent.exitCode}:\n${output}`);
        return fetch(`http://127.0.0.1:${port}/`).then((r) => r.status, () => undefined);
      }, 60_000, `the compiled agent to listen\n${output}`);
      expect(status).toBe(503);
      expect(output).not.toMatch(/tsx/);
      // The port opens before the service's signal handlers exist; the stop below waits for them
      // (the agent logs its port once started), or a SIGTERM in that first moment ends it by the signal.
      await eventually(async () => (output.includes("listening on port") ? true : undefined), 60_000, `the compiled agent started\n${output}`);
    } finally {
      await stopChild(agent, 10_000);
    }
    expect(agent.exitCode, output).toBe(0);
  });

  it("slipway --help runs the compiled CLI; without a build the bin says to build", async () => {
    const { stdout } = await run(path.join(root, "node_modules/.bin/slipway"), ["--help"], { env: plainEnv() });
    expect(stdout).toMatch(/^Usage: slipway \[options\] \[command\]/);
    expect(stdout).toMatch(/^  deploy \[options\] \[dir\]/m);

    const unbuilt = path.join(work, "cli");
    await mkdir(path.join(unbuilt, "bin"), { recursive: true });
    await copyFile(path.join(root, "cli/bin/slipway.mjs"), path.join(unbuilt, "bin/slipway.mjs"));
    const failed = await run(process.execPath, [path.join(unbuilt, "bin/slipway.mjs"), "--help"], { env: plainEnv() }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toBe("slipway: the CLI is not built: run `npm run build` in the Slipway checkout\n");
  });
});
