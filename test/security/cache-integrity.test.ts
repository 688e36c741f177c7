import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compressionOf, extractStream, packDirectory, storageKeys } from "@slipway/shared";
import { packSource, scanSource } from "../../cli/src/pack";
import { uniqueApp } from "../harness/env";
import { json } from "../harness/http";
import { extractArtifact, startInProcessStack, uploadDir, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../harness/stack";
import { buildWheel } from "../harness/wheels";

/**
 * The threat: a build (arbitrary code) got hold of the storage credentials and rewrote what other
 * builds of the app trust from storage: a dependency-cache layer, or a cached source file.
 */
let stack: InProcessStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-cache-integrity-"));
  const wheels = path.join(work, "wheels");
  await mkdir(wheels);
  buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "genuine tool" });
  stack = await startInProcessStack({ PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" });
});
afterAll(async () => {
  await stack.close();
  await rm(work, { recursive: true, force: true });
});

const logOf = (build: BuildView) => stack.api.store.getText(storageKeys.buildLog(build.app, build.id));
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

async function rebuild(app: string): Promise<BuildView> {
  const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/rebuild`, { method: "POST" });
  expect(response.status).toBe(202);
  return waitForBuild(stack.baseUrl, (await json<BuildView>(response)).id);
}

async function sitePackages(venv: string): Promise<string> {
  const [version] = (await readdir(path.join(venv, "lib"))).filter((name) => name.startsWith("python"));
  return path.join(venv, "lib", version!, "site-packages");
}

/**
 * Rewrites the stored layer at `key` as an attacker would: the same venv plus a `.pth` file, which
 * every Python start in that venv executes, writing a marker file.
 */
async function poisonLayer(key: string, marker: string): Promise<string> {
  const dir = await mkdtemp(path.join(work, "poison-"));
  await extractStream(await stack.api.store.getStream(key), dir, { allowExternalSymlinks: true, compression: compressionOf(key) });
  await writeFile(
    path.join(await sitePackages(dir), "zz_poison.pth"),
    `import os; open(os.environ.get("POISON_MARKER") or ${JSON.stringify(marker)}, "w").write("poisoned")\n`,
  );
  // The poison works: any Python of this venv runs it.
  const proof = path.join(dir, "proof");
  execFileSync(path.join(dir, "bin/python"), ["-c", "pass"], { env: { ...process.env, POISON_MARKER: proof } });
  expect(await readFile(proof, "utf8")).toBe("poisoned");
  await rm(proof);
  const packed = await packDirectory(dir, `${dir}.archive`, compressionOf(key));
  await stack.api.store.putStream(key, createReadStream(packed.file));
  return packed.sha256;
}

describe("dependency-cache layers are used only with the sha256 the worker recorded", () => {
  it("a rewritten layer is ignored with a warning and the dependencies installed for real; the poison never runs nor ships", async () => {
    const app = uniqueApp("poisoned-cache");
    const marker = path.join(work, `${app}-marker`);
    const dir = await writeTree(path.join(work, app), { "app.py": "", "requirements.txt": "hello-tool==1.0\n" });
    const cold = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir)).id);
    expect(cold.status).toBe("succeeded");
    expect(await logOf(cold)).toContain("Saved antenv to the dependency cache");
    const [key, ...others] = await stack.api.store.list(`cache/${app}/`);
    expect(others).toEqual([]);
    const record = JSON.parse((await stack.api.redis.hget(stack.keys.cacheDigests(app), key!))!) as { sha256: string; unpackedBytes: number; entries: number };
    const recorded = record.sha256;
    expect(recorded).toMatch(/^[0-9a-f]{64}$/);
    expect(record.unpackedBytes).toBeGreaterThan(0);

    const poisonedSha = await poisonLayer(key!, marker);
    expect(poisonedSha).not.toBe(recorded);
    const afterPoison = await rebuild(app);
    expect(afterPoison.status).toBe("succeeded");
    const log = await logOf(afterPoison);
    expect(log).toContain(`Dependency cache layer ${path.basename(key!)} failed its sha256 check: ignored`);
    expect(log).not.toContain("Dependency cache hit");
    expect(log).toMatch(/Running pip install[\s\S]*Saved antenv to the dependency cache/);
    expect(existsSync(marker)).toBe(false);
    const artifact = await extractArtifact(stack, afterPoison, work);
    const site = await sitePackages(path.join(artifact, "antenv"));
    expect(existsSync(path.join(site, "zz_poison.pth"))).toBe(false);
    expect(await readdir(site)).toContain("hello_tool");

    // The worker saved a genuine layer again, and recorded its digest: the cache works once more.
    const healed = await rebuild(app);
    expect(await logOf(healed)).toContain("Dependency cache hit: restored antenv");
    expect(existsSync(marker)).toBe(false);

    // A genuine layer that unpacks past the size its worker recorded is stopped, and installed instead.
    const genuine = JSON.parse((await stack.api.redis.hget(stack.keys.cacheDigests(app), key!))!) as { sha256: string; unpackedBytes: number; entries: number };
    await stack.api.redis.hset(stack.keys.cacheDigests(app), key!, JSON.stringify({ ...genuine, unpackedBytes: 1024 }));
    const oversized = await rebuild(app);
    expect(oversized.status).toBe("succeeded");
    const oversizedLog = await logOf(oversized);
    expect(oversizedLog).toMatch(/Dependency cache entry .* is unusable \(.*more than 1024 bytes.*\); installing instead/);
    expect(oversizedLog).toContain("Running pip install");

    // A layer no worker recorded (planted where the record is missing) is ignored too.
    await poisonLayer(key!, marker);
    await stack.api.redis.hdel(stack.keys.cacheDigests(app), key!);
    const unrecorded = await rebuild(app);
    expect(unrecorded.status).toBe("succeeded");
    const unrecordedLog = await logOf(unrecorded);
    expect(unrecordedLog).toContain(`Dependency cache layer ${path.basename(key!)} has no sha256 on record: ignored`);
    expect(unrecordedLog).toContain("Running pip install");
    expect(existsSync(marker)).toBe(false);
  }, 240_000);
});

describe("cached source files (resources) are re-hashed whenever a source is assembled from them", () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../node_modules/.bin/slipway");
  const slipway = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(bin, args, { cwd: work, env: { ...process.env, SLIPWAY_URL: stack.baseUrl }, timeout: 120_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  it("a rewritten resource is never assembled: the API discards it and asks for the file, and the CLI then sends everything", async () => {
    const app = uniqueApp("poisoned-resource");
    const genuine = "SECRET_KEY = 'from the developer'\n".repeat(50);
    const dir = await writeTree(path.join(work, app), { "app.py": "print('v1')\n", "settings.py": genuine });
    const first = await slipway(["deploy", dir, "--app", app, "--create"]);
    expect(first.code, first.stderr).toBe(0);
    const digest = sha256(genuine);
    const resourceKey = storageKeys.resource(app, digest);
    expect(await stack.api.store.getText(resourceKey)).toBe(genuine);

    const tampered = "SECRET_KEY = 'from the attacker'\n";
    await stack.api.store.putBuffer(resourceKey, tampered);
    const match = async () =>
      (await json<{ held: string[] }>(
        await fetch(`${stack.baseUrl}/v1/apps/${app}/resources/match`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ resources: [digest] }) }),
      )).held;
    expect(await match()).toEqual([digest]); // a listing cannot tell: only the bytes can

    // The partial upload the CLI would send: app.py changed, settings.py "held" by the server.
    await writeFile(path.join(dir, "app.py"), "print('v2')\n");
    const archive = path.join(work, `${app}-partial.tar.gz`);
    const packed = await packSource(dir, archive, { entries: await scanSource(dir), digests: new Set([digest]) });
    expect(packed).toMatchObject({ sent: 1, matched: 1 });
    const refused = await fetch(`${stack.baseUrl}/v1/apps/${app}/builds?resources=1`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body: await readFile(archive) });
    expect(refused.status).toBe(409);
    const { error } = await json<{ error: { code: string; message: string } }>(refused);
    expect(error.code).toBe("resource_missing");
    expect(error.message).toBe(`the server's copy of settings.py (${digest}) failed its sha256 check and was discarded: deploy again to upload it`);
    expect(await stack.api.store.exists(resourceKey)).toBe(false);
    expect(await match()).toEqual([]);

    // Planted again, and the real CLI deploys: it falls back to sending every file.
    await stack.api.store.putBuffer(resourceKey, tampered);
    const second = await slipway(["deploy", dir, "--app", app, "--follow", "--json"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/packed 1 of 2 files[\s\S]*failed its sha256 check[\s\S]*sending all files[\s\S]*packed 2 files/);
    const { build } = JSON.parse(second.stdout) as { build: BuildView };
    expect(build.status).toBe("succeeded");
    const artifact = await extractArtifact(stack, build, work);
    expect(await readFile(path.join(artifact, "settings.py"), "utf8")).toBe(genuine);
    expect(await readFile(path.join(artifact, "app.py"), "utf8")).toBe("print('v2')\n");
    // The worker put the genuine bytes back under their address.
    expect(await stack.api.store.getText(resourceKey)).toBe(genuine);
  }, 240_000);
});
