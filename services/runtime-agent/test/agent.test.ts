import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, hostCacheDir, outputRecordSha256, packDirectory, parseManifest, storageKeys, type InstanceReport } from "@slipway/shared";
import { fetchHelper } from "../../../test/harness/entries";
import { uniqueApp } from "../../../test/harness/env";
import { eventually } from "../../../test/harness/local-stack";
import { startInProcessStack, uploadDir, waitForBuild, type BuildView, type InProcessStack } from "../../../test/harness/stack";
import { writeTarGz } from "../../../test/harness/tarballs";
import { buildWheel } from "../../../test/harness/wheels";
import type { RuntimeAgent } from "../src/agent";
import { labelApp } from "../../../test/harness/apps";
import { releaseByHand, startAgentOn } from "../../../test/harness/agents";

let stack: InProcessStack;
let work: string;
let app: string;
let agent: RuntimeAgent;
let instanceUrl: string;
let runtimeRoot: string;

const serverPy = (version: string) => labelApp(version);

async function appSource(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(path.join(dir, file), content);
  return dir;
}

async function build(files: Record<string, string>, deploy = true): Promise<BuildView> {
  const queued = await uploadDir(stack.baseUrl, app, await appSource(randomUUID(), files), deploy ? "" : "?deploy=false");
  const done = await waitForBuild(stack.baseUrl, queued.id);
  expect(done.status).toBe("succeeded");
  return done;
}

const release = (buildId: string) => releaseByHand(stack, app, buildId);

const body = async () => (await fetch(instanceUrl)).text();
const myInstance = async () => (await stack.api.instances.list(app)).find((i) => i.instanceId === "i-1");

async function expectFailedKeepingV1(version: number, reason: RegExp): Promise<InstanceReport> {
  const report = await eventually(async () => {
    const r = await myInstance();
    return r?.state === "failed" && r.release === version ? r : undefined;
  }, 30_000, `release ${version} reported failed`);
  expect(report.error).toMatch(reason);
  expect(await body()).toBe("v1");
  return report;
}

const startAgent = (env: Record<string, string> = {}) =>
  startAgentOn(stack, { APP: app, INSTANCE_ID: "i-1", PORT: new URL(instanceUrl).port, RUNTIME_ROOT: runtimeRoot, HEALTH_TIMEOUT_S: "5", RECONCILE_INTERVAL_S: "3600", ...env });

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-agent-"));
  const wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "tool ok" });
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" });
  app = uniqueApp("agent");
  runtimeRoot = path.join(work, "runtime");
  instanceUrl = `http://127.0.0.1:${await freePort()}`;
  await build({ "app.py": serverPy("v1"), "requirements.txt": "hello-tool==1.0\n" });
  agent = await startAgent();
  await eventually(async () => ((await body()) === "v1" ? true : undefined), 30_000, "v1 serving");
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

describe("runtime agent keeps the previous release serving when a new one is bad", () => {
  it("refuses a tampered artifact (sha256 mismatch)", async () => {
    const bad = await build({ "app.py": serverPy("tampered") }, false);
    const other = path.join(work, "other.tar.gz");
    writeTarGz(other, [{ name: "app.py", content: serverPy("evil") }]);
    await stack.api.store.putBuffer(bad.artifact!.key, await readFile(other));
    const version = await release(bad.id);
    await expectFailedKeepingV1(version, /failed verification: (its )?sha256/);
  });

  it("refuses an artifact missing from storage", async () => {
    const gone = await build({ "app.py": serverPy("gone") }, false);
    await stack.api.store.remove(gone.artifact!.key);
    await expectFailedKeepingV1(await release(gone.id), /missing from storage/);
  });

  it("refuses a manifest that does not parse", async () => {
    const broken = await build({ "app.py": serverPy("broken") }, false);
    await stack.api.store.putBuffer(storageKeys.manifest(app, broken.id), "PlatformName = \nnot toml at all [[[");
    await expectFailedKeepingV1(await release(broken.id), /does not parse/);
  });

  it("refuses an artifact with escaping paths even when its checksum matches", async () => {
    const escaping = await build({ "app.py": serverPy("escaping") }, false);
    const file = path.join(work, "escaping.tar.gz");
    writeTarGz(file, [{ name: "app.py", content: "x" }, { name: "../../outside.txt", content: "pwned" }]);
    const bytes = await readFile(file);
    // As a gzip artifact, which the runtime restores as well as zstd.
    await stack.api.store.putBuffer(storageKeys.artifact(app, escaping.id, "output.tar.gz"), bytes);
    const { createHash } = await import("node:crypto");
    const manifest = (await stack.api.store.getText(storageKeys.manifest(app, escaping.id)))
      .replace(/OutputFileName = "[^"]+"/, 'OutputFileName = "output.tar.gz"')
      .replace(/OutputSha256 = "[0-9a-f]+"/, `OutputSha256 = "${createHash("sha256").update(bytes).digest("hex")}"`)
      .replace(/OutputBytes = "\d+"/, `OutputBytes = "${bytes.length}"`);
    await stack.api.store.putBuffer(storageKeys.manifest(app, escaping.id), manifest);
    await expectFailedKeepingV1(await release(escaping.id), /artifact refused: .*escapes the archive root/);
    expect(existsSync(path.join(runtimeRoot, "outside.txt"))).toBe(false);
  });

  it("keeps v1 when the new release fails its health check, reporting the app's last output", async () => {
    const crashing = await build({ "app.py": "import sys\nprint('boom: missing DATABASE_URL', flush=True)\nsys.exit(3)\n" });
    const report = await expectFailedKeepingV1(crashing.release!, /exited \(code 3\) before answering/);
    expect(report.error).toContain("boom: missing DATABASE_URL");
  });
});

describe("runtime agent compatibility and restarts", () => {
  it("restores and runs a release whose manifest was written by Oryx itself", async () => {
    const oryxBuildId = `oryx${randomUUID().replace(/-/g, "").slice(0, 12)}`;
    // An Oryx-style build: venv built in the build dir, whole dir compressed, Oryx's keys only.
    const buildDir = path.join(work, "oryx-build", oryxBuildId);
    await mkdir(buildDir, { recursive: true });
    await writeFile(path.join(buildDir, "app.py"), serverPy("oryx"));
    execFileSync("python3", ["-m", "venv", path.join(buildDir, "antenv")]);
    const packed = await packDirectory(buildDir, path.join(work, `${oryxBuildId}.tar.gz`));
    await stack.api.store.putBuffer(storageKeys.artifact(app, oryxBuildId), await readFile(packed.file));
    await stack.api.store.putBuffer(
      storageKeys.manifest(app, oryxBuildId),
      [
        'PythonVersion="3.11.7"',
        'pythonBuildCommandsFile="/tmp/zipdeploy/extracted/oryx-build-commands.txt"',
        'virtualEnvName="antenv"',
        `OperationId="${oryxBuildId}"`,
        `SourceDirectoryInBuildContainer="${buildDir}"`,
        'PlatformName="python"',
        'CompressDestinationDir="true"',
        "",
      ].join("\n"),
    );
    await rm(buildDir, { recursive: true, force: true });
    const version = await release(oryxBuildId);
    await eventually(async () => ((await body()) === "oryx" ? true : undefined), 30_000, "the Oryx-built release serving");
    const report = await myInstance();
    expect(report).toMatchObject({ state: "running", release: version, buildId: oryxBuildId });
    const activate = await readFile(path.join(report!.appPath!, "antenv/bin/activate"), "utf8");
    expect(activate).toContain(path.join(report!.appPath!, "antenv"));
    expect(activate).not.toContain(buildDir);
  });

  it("a restarted agent serves its verified release without downloading or extracting it again", async () => {
    const current = await myInstance();
    const marker = await readFile(path.join(current!.appPath!, ".slipway/restored.json"), "utf8");
    await agent.stop();
    // Make any fresh download impossible: the restart must use what is on disk, manifest included.
    await stack.api.store.remove(storageKeys.artifact(app, current!.buildId!));
    await stack.api.store.remove(storageKeys.manifest(app, current!.buildId!));
    agent = await startAgent();
    await eventually(async () => ((await body()) === "oryx" ? true : undefined), 30_000, "serving after restart");
    expect(await readFile(path.join(current!.appPath!, ".slipway/restored.json"), "utf8")).toBe(marker);
    expect(await myInstance()).toMatchObject({ state: "running", release: current!.release });
    // Operators' shell entry point follows the live release.
    const profile = await readFile(path.join(runtimeRoot, "current", ".slipway", "profile.sh"), "utf8");
    expect(profile).toContain(`export APP_PATH='${current!.appPath}'`);
  });
});


describe("runtime agent restores what the worker pinned", () => {
  const entryMarker = async (buildId: string) =>
    JSON.parse(await readFile(path.join(hostCacheDir({ RUNTIME_ROOT: runtimeRoot }), app, buildId, "marker.json"), "utf8")) as { verifiedBy?: string };

  it("checks a worker's artifact chunk by chunk against the record the worker pinned in Redis, which the API does not show", async () => {
    const pinned = await build({ "app.py": serverPy("pinned") }, false);
    const record = await stack.api.builds.get(pinned.id);
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, pinned.id)));
    expect(manifest).toMatchObject({ outputModesSealed: true, outputChunkBytes: 4 * 1024 * 1024 });
    expect(record?.outputRecordSha256).toBe(outputRecordSha256(manifest));
    expect(pinned).not.toHaveProperty("outputRecordSha256");
    await release(pinned.id);
    await eventually(async () => ((await body()) === "pinned" ? true : undefined), 30_000, "the pinned release serving");
    await eventually(async () => (await entryMarker(pinned.id).catch(() => undefined))?.verifiedBy, 10_000, "the host cache entry's marker");
    // By slipway-fetch, as the compiled agent does, wherever Go built it.
    expect((await entryMarker(pinned.id)).verifiedBy).toBe(existsSync(fetchHelper) ? "slipway-fetch" : "chunks");
    // Nothing sealed the tree here: the worker packed it sealed.
    const tree = path.join(hostCacheDir({ RUNTIME_ROOT: runtimeRoot }), app, pinned.id, "tree");
    const unsealed = execFileSync("find", [tree, "(", "-type", "d", "-not", "-perm", "0777", ")", "-o", "(", "-type", "f", "-perm", "/6222", ")"], { encoding: "utf8" });
    expect(unsealed).toBe("");
  });

  it("restores the vetted way an artifact whose manifest in storage no longer matches the pinned record", async () => {
    const rewritten = await build({ "app.py": serverPy("rewritten") }, false);
    const key = storageKeys.manifest(app, rewritten.id);
    // Storage alone cannot opt a release into the unvetted path: any change to the record sends it the vetted way.
    await stack.api.store.putBuffer(key, (await stack.api.store.getText(key)).replace(/OutputModesSealed = "true"/, 'OutputModesSealed = "false"'));
    await release(rewritten.id);
    await eventually(async () => ((await body()) === "rewritten" ? true : undefined), 30_000, "the rewritten release serving");
    expect((await entryMarker(rewritten.id)).verifiedBy).toBe("sha256");
  });

  it("checks the chunks in node when told to do without slipway-fetch (FETCH_HELPER=node)", async () => {
    const plain = await build({ "app.py": serverPy("plain node") }, false);
    await agent.stop();
    agent = await startAgent({ FETCH_HELPER: "node" });
    await release(plain.id);
    await eventually(async () => ((await body()) === "plain node" ? true : undefined), 30_000, "the release restored by node serving");
    await eventually(async () => (await entryMarker(plain.id).catch(() => undefined))?.verifiedBy, 10_000, "the host cache entry's marker");
    expect((await entryMarker(plain.id)).verifiedBy).toBe("chunks");
  });
});
