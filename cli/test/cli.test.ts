import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppLogStream, freePort, PlacementRepository, recordKeys, type AppLogEntry } from "@slipway/shared";
import { uniqueApp } from "../../test/harness/env";
import { eventually } from "../../test/harness/local-stack";
import { startInProcessStack, writeTree, type InProcessStack } from "../../test/harness/stack";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "node_modules/.bin/slipway");
/** Recognizable, so a test can tell it never shows up in what the CLI prints. */
const TOKEN = "cli-token-7c1e55d0a4";

let stack: InProcessStack;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-cli-"));
  // No app asks for instances unless a test scales it: the scale test's host takes only what it places.
  stack = await startInProcessStack({ API_TOKEN: TOKEN, DEFAULT_INSTANCES: "0" });
});
afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

/** Runs the real `slipway` binary; answers its exit code and output. */
function slipway(args: string[], env: Record<string, string> = {}, cwd = work): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env: { ...process.env, SLIPWAY_URL: stack.baseUrl, SLIPWAY_TOKEN: TOKEN, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("slipway CLI against a real stack", () => {
  it("deploys a directory with progress, follows the build and ends with the release; never uploads ignored files; --detach returns once queued", async () => {
    const app = uniqueApp("cli");
    const dir = await writeTree(path.join(work, app), {
      "app.py": "print('hi')\n",
      ".gitignore": "secrets.txt\n",
      ".slipwayignore": "big/\n",
      "secrets.txt": "do not upload",
      "big/blob.bin": "x".repeat(1000),
      "node_modules/left/index.js": "x",
      "antenv/bin/python": "x",
      ".git/HEAD": "ref",
    });
    const result = await slipway(["deploy", dir, "--app", app, "--follow", "--create"]);
    expect(result.stderr).toMatch(/packed 3 files/); // app.py, .gitignore, .slipwayignore
    // Not a terminal: one progress line, the final one.
    expect(result.stderr.match(/uploading /g)).toHaveLength(1);
    expect(result.stderr).toMatch(/uploading .* \(100%\) at .*\/s\n/);
    expect(result.stderr).not.toContain("\r");
    expect(result.stdout).toContain("Creating virtual environment antenv");
    expect(result.stdout).toContain("build succeeded: release v1");
    expect(result.code).toBe(0);

    const builds = JSON.parse((await slipway(["builds", "--app", app, "--json"])).stdout) as { id: string; status: string }[];
    expect(builds).toHaveLength(1);
    const log = (await slipway(["builds", "logs", builds[0]!.id])).stdout;
    expect(log).toContain("Source extracted: ");
    // Only the three files (and the root dir) were in the upload.
    expect(log).toMatch(/Source extracted: 4 entries/);

    const jsonLog = JSON.parse((await slipway(["builds", "logs", builds[0]!.id, "--json"])).stdout) as { lines: string[] };
    expect(jsonLog.lines.some((line) => line.startsWith("Source extracted: "))).toBe(true);

    const detached = await slipway(["deploy", dir, "--app", app, "--detach", "--json"]);
    expect(detached.code).toBe(0);
    const queued = JSON.parse(detached.stdout) as { build: { id: string; status: string }; upload: { files: number } };
    expect(queued.build.status).not.toBe("succeeded");
    expect(queued.upload.files).toBe(3);
    // A rollback needs a second release to roll back from: wait for that build to be released.
    await eventually(async () => {
      const all = JSON.parse((await slipway(["builds", "--app", app, "--json"])).stdout) as { status: string }[];
      return all.length === 2 && all.every((b) => b.status === "succeeded") ? true : undefined;
    }, 120_000, "the second deploy's release");
    const cancel = await slipway(["builds", "cancel", queued.build.id]);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toMatch(/^slipway: POST .* failed with 409: .*\n$/);
    const rollback = await slipway(["rollback", "--app", app, "--json"]);
    expect(rollback.code).toBe(0);
    expect(JSON.parse(rollback.stdout)).toMatchObject({ reason: "rollback" });
    const releases = JSON.parse((await slipway(["releases", "--app", app, "--json"])).stdout) as { version: number; reason: string }[];
    expect(releases[0]).toMatchObject({ reason: "rollback" });
    expect((await slipway(["releases", "--app", app])).stdout).toMatch(/^VERSION\s+BUILD\s+REASON/);
    const older = await slipway(["rollback", "--app", app, "--version", "1", "--json"]);
    expect(JSON.parse(older.stdout)).toMatchObject({ reason: "rollback", version: 4 });
  }, 180_000);

  it("a re-deploy uploads only the files the server does not hold; the server assembles the full source", async () => {
    const app = uniqueApp("climatch");
    const files: Record<string, string> = { "app.py": "print('v1')\n" };
    for (let i = 0; i < 20; i++) files[`data/file-${i}.txt`] = `${i}`.repeat(5000);
    const dir = await writeTree(path.join(work, app), files);
    const first = await slipway(["deploy", dir, "--app", app, "--create"]);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/packed 21 files/);
    await writeFile(path.join(dir, "app.py"), "print('v2')\n");
    const second = await slipway(["deploy", dir, "--app", app, "--follow", "--json"]);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/packed 1 of 21 files .*; 20 unchanged files are already on the server/);
    const { build } = JSON.parse(second.stdout) as { build: { id: string; artifact: { key: string }; status: string } };
    expect(build.status).toBe("succeeded");
    const { extractArtifact } = await import("../../test/harness/stack");
    const out = await extractArtifact(stack, build as never, work);
    expect(await readFile(path.join(out, "app.py"), "utf8")).toBe("print('v2')\n");
    expect(await readFile(path.join(out, "data/file-7.txt"), "utf8")).toBe("7".repeat(5000));
    const full = await slipway(["deploy", dir, "--app", app, "--no-match", "--detach"]);
    expect(full.stderr).toMatch(/packed 21 files/);
  }, 180_000);

  it("exits non-zero when the build fails, and on bad tokens and unreachable servers, with one readable line", async () => {
    const app = uniqueApp("clifail");
    const dir = await writeTree(path.join(work, app), { "app.py": "", "requirements.txt": "no-such-package-for-slipway-cli==1.0\n" });
    const failed = await slipway(["deploy", dir, "--app", app, "--create"], { PIP_NO_INDEX: "1" });
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim().split("\n").at(-1)).toMatch(/^slipway: build .* failed: pip install -r requirements.txt failed/);

    const unauthorized = await slipway(["apps"], { SLIPWAY_TOKEN: "wrong" });
    expect(unauthorized.code).toBe(1);
    expect(unauthorized.stderr.trim()).toBe("slipway: the API refused the token (401): set SLIPWAY_TOKEN or --token");

    const unreachable = await slipway(["apps", "--url", `http://127.0.0.1:${await freePort()}`]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
    expect(unreachable.stderr).toMatch(/^slipway: cannot reach the Slipway API/);

    const help = await slipway(["deploy", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--follow");
  }, 180_000);

  it("never prints the token: not in help, usage errors, failed requests or --json output", async () => {
    const help = await slipway(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("SLIPWAY_TOKEN");
    const usage = await slipway(["no-such-command"]);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toContain("unknown command");
    const listed = await slipway(["apps", "--json"]);
    expect(listed.code).toBe(0);
    const missing = await slipway(["builds", "--app", uniqueApp("nothere"), "--json"]);
    expect(missing.stderr).toMatch(/^slipway: GET .* failed with 404/);
    const unreachable = await slipway(["apps", "--url", `http://127.0.0.1:${await freePort()}`]);
    // A token no HTTP header can carry: fetch's own error would quote it.
    const unsendable = await slipway(["apps"], { SLIPWAY_TOKEN: `${TOKEN}\nsecond-line` });
    for (const [what, result] of Object.entries({ help, usage, listed, missing, unreachable, unsendable })) {
      expect(result.stdout + result.stderr, what).not.toContain(TOKEN);
    }
    expect(unsendable.stderr.trim()).toBe("slipway: the API token (SLIPWAY_TOKEN or --token) has characters an HTTP header cannot carry");
  });

  it("slipway up runs the local stack and stops it cleanly on Ctrl-C", async () => {
    const { spawn } = await import("node:child_process");
    const port = await freePort();
    const instance = await freePort();
    const up = spawn(bin, ["up"], {
      cwd: work,
      env: { ...process.env, ...stack.env, API_PORT: String(port), INSTANCE_PORTS: String(instance), SLIPWAY_APP: uniqueApp("up"), SLIPWAY_DATA_DIR: path.join(work, "up-data"), QUEUE_PREFIX: "cli-up" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    up.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => up.once("exit", (code) => resolve(code)));
    try {
      const { eventually } = await import("../../test/harness/local-stack");
      await eventually(async () => ((await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) ? true : undefined), 60_000, "slipway up to serve");
      expect(output).toContain("Slipway is starting:");
    } finally {
      up.kill("SIGINT");
    }
    expect(await exited).toBe(0);
  }, 90_000);

  it("sets and reads an app's buildEnv and start command", async () => {
    // The app's own env goes through PATCH …/config, which this API does not have yet: not tested here.
    const app = uniqueApp("cliconf");
    expect((await slipway(["config", "set", "--app", app, "build.PYTHON_VERSION=3.11"])).stderr).toMatch(new RegExp(`^slipway: GET .* failed with 404: app ${app} does not exist`));
    expect((await slipway(["apps", "create", app, "--no-file"])).code).toBe(0);
    expect((await slipway(["config", "set", "--app", app, "build.PYTHON_VERSION=3.11", "build.EXTRA=1", "startupCommand=python app.py"])).code).toBe(0);
    expect((await slipway(["config", "unset", "--app", app, "build.EXTRA"])).code).toBe(0);
    expect(JSON.parse((await slipway(["config", "get", "--app", app, "--json"])).stdout)).toMatchObject({ env: {}, buildEnv: { PYTHON_VERSION: "3.11" }, startupCommand: "python app.py" });
    expect((await slipway(["config", "get", "--app", app])).stdout).toBe("build.PYTHON_VERSION=3.11\nstartupCommand=python app.py\n");
    expect((await slipway(["config", "set", "--app", app, "nonsense"])).stderr).toMatch(/^slipway: "nonsense" is not KEY=VALUE/);
  });

  it("config set/unset of env round-trips through PATCH, and a secret it cannot see survives setting another variable", async () => {
    const app = uniqueApp("clisecret");
    await stack.api.apps.upsert(app, {});
    expect((await slipway(["config", "set", "--app", app, "API_KEY=k-1", "GREETING=hi", "build.NPM_TOKEN=t-1"])).code).toBe(0);
    expect((await slipway(["config", "set", "--app", app, "GREETING=hello", "build.EXTRA=1"])).code).toBe(0);
    expect((await slipway(["config", "unset", "--app", app, "GREETING"])).code).toBe(0);
    expect(JSON.parse((await slipway(["config", "get", "--app", app, "--json"])).stdout)).toMatchObject({ env: { API_KEY: "••••" }, buildEnv: { NPM_TOKEN: "••••", EXTRA: "1" } });
    const stored = await stack.api.apps.get(app);
    expect(stored?.env).toEqual({ API_KEY: "k-1" });
    expect(stored?.buildEnv).toEqual({ NPM_TOKEN: "t-1", EXTRA: "1" });
  });

  it("scale sets and shows an app's instance count, says when the hosts lack room, and hosts lists, drains and undrains hosts", async () => {
    const app = uniqueApp("cliscale");
    await stack.api.apps.upsert(app, {});
    const hostId = `cli-host-${app.slice(-8)}`;
    const placements = new PlacementRepository(stack.api.redis, recordKeys(stack.env.QUEUE_PREFIX));
    // The host beats before each step that needs it ready: on a busy machine the steps may take longer than HOST_DEAD_S.
    const beat = () => placements.beat({ id: hostId, address: "10.9.8.7", capacity: 3, memoryMb: 1024, labels: {}, startedAt: new Date().toISOString() });
    await beat();
    expect(await slipway(["scale", "2", "--app", app])).toMatchObject({ code: 0, stdout: `${app}: 2 instance(s) asked for, 2 placed\n` });
    expect((await slipway(["scale", "--app", app])).stdout).toBe(`${app}: 2 instance(s) asked for, 2 placed\n`);
    const short = await slipway(["scale", "5", "--app", app]);
    expect(short.stdout).toMatch(/5 instance\(s\) asked for, 3 placed\nonly 3 of 5 instances could be placed/);
    expect(await slipway(["scale", "many", "--app", app])).toMatchObject({ code: 1, stderr: `slipway: "many" is not a number of instances\n` });
    await beat();
    const listed = (await slipway(["hosts"])).stdout.split("\n").find((line) => line.startsWith(hostId));
    expect(listed).toMatch(new RegExp(`^${hostId} +ready +10\\.9\\.8\\.7 +3/3 `));
    await beat();
    expect((await slipway(["hosts", "drain", hostId])).stdout).toMatch(new RegExp(`^${hostId}: draining; `));
    expect(JSON.parse((await slipway(["hosts", "--json"])).stdout).find((h: { id: string }) => h.id === hostId)).toMatchObject({ state: "draining" });
    await beat();
    expect((await slipway(["hosts", "undrain", hostId])).stdout).toMatch(new RegExp(`^${hostId}: ready; `));
    expect((await slipway(["hosts", "drain", "no-such-host"])).stderr).toMatch(/host no-such-host does not exist/);
    expect((await slipway(["scale", "0", "--app", app])).code).toBe(0);
  });

  it("domains adds, lists and removes an app's custom domains; open and apps show its URL", async () => {
    const app = uniqueApp("clidomain");
    const other = uniqueApp("clidomain");
    await stack.api.apps.upsert(app, {});
    await stack.api.apps.upsert(other, {});
    const url = `http://${app}.localhost/`;
    expect(await slipway(["domains", "add", `www.${app}.test`, "--app", app])).toMatchObject({ code: 0, stdout: `${app}: ${url}\n  www.${app}.test\n` });
    expect((await slipway(["domains", "--app", app])).stdout).toBe(`${app}: ${url}\n  www.${app}.test\n`);
    expect(await slipway(["domains", "add", `www.${app}.test`, "--app", other])).toMatchObject({ code: 1, stderr: expect.stringContaining(`www.${app}.test belongs to app ${app}; remove it there first (domain_taken)`) });
    expect((await slipway(["domains", "add", "not a domain", "--app", app])).code).toBe(1);
    expect(await slipway(["domains", "remove", `www.${app}.test`, "--app", app])).toMatchObject({ code: 0, stdout: `${app}: ${url}\n` });
    expect(await slipway(["open", "--app", app])).toMatchObject({ code: 0, stdout: `${url}\n` });
    expect((await slipway(["apps"])).stdout.split("\n").find((line) => line.startsWith(app))).toMatch(new RegExp(`^${app} +${url.replace(/[./]/g, "\\$&")} `));
  });
});

describe("slipway logs", () => {
  const logLine = (instanceId: string, line: string, stream: AppLogEntry["stream"] = "stdout"): AppLogEntry => ({ time: new Date().toISOString(), instanceId, release: 1, stream, line });
  const appLogs = () => new AppLogStream(stack.api.redis, recordKeys(stack.env.QUEUE_PREFIX));
  const bounds = { maxLines: 1000, maxAgeS: 3600 };

  it("prints an app's log as text or JSON, by instance and since; --tail follows new lines; build logs stay reachable", async () => {
    const app = uniqueApp("clilogs");
    await stack.api.apps.upsert(app, {});
    await appLogs().append(app, [logLine("i-1", "one from i-1"), logLine("i-2", "oops from i-2", "stderr"), logLine("i-1", "starting v1", "system")], bounds);

    const text = await slipway(["logs", "--app", app]);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(/^\S+Z i-1 stdout: one from i-1$/),
      expect.stringMatching(/^\S+Z i-2 stderr: oops from i-2$/),
      expect.stringMatching(/^\S+Z i-1 system: starting v1$/),
    ]);
    const onlyTwo = JSON.parse((await slipway(["logs", "--app", app, "--instance", "i-2", "--since", "1h", "--json"])).stdout) as AppLogEntry[];
    expect(onlyTwo).toEqual([expect.objectContaining({ instanceId: "i-2", stream: "stderr", line: "oops from i-2", release: 1 })]);
    expect((await slipway(["logs", "--app", app, "-n", "1"])).stdout).toMatch(/i-1 system: starting v1\n$/);

    const tail = spawn(bin, ["logs", "--app", app, "--tail", "-n", "1"], { cwd: work, env: { ...process.env, SLIPWAY_URL: stack.baseUrl, SLIPWAY_TOKEN: TOKEN }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    tail.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    try {
      await eventually(async () => (out.includes("starting v1") ? true : undefined), 20_000, "the tail to print the newest line");
      await appLogs().append(app, [logLine("i-2", "printed later")], bounds);
      await eventually(async () => (out.includes("i-2 stdout: printed later") ? true : undefined), 20_000, "the tail to print a new line");
      expect(out).not.toContain("one from i-1");
    } finally {
      tail.kill();
    }

    const missing = await slipway(["logs", "--app", uniqueApp("nologs")]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/does not exist \(not_found\)/);
    const build = await slipway(["builds", "logs", "00000000-0000-4000-8000-000000000000"]);
    expect(build.stderr).toMatch(/build 00000000-0000-4000-8000-000000000000 does not exist/);
  });
});
