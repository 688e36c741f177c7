import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { currentReleasePointerSchema, parseManifest, RELEASE_CHANNEL, storageKeys } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { extractArtifact, uploadDir, uploadFile, waitForBuild } from "../../../test/harness/stack";
import { useStack } from "../../../test/harness/use-stack";
import { writeTarGz } from "../../../test/harness/tarballs";
import { buildWheel } from "../../../test/harness/wheels";

const { stack, work } = useStack("worker-test", {
  env: async (work) => {
    const wheels = path.join(work, "wheels");
    await mkdir(wheels);
    buildWheel(wheels, { name: "hello-tool", version: "1.0", script: "hello-tool", message: "hello from the console script" });
    return { PIP_FIND_LINKS: wheels, PIP_NO_INDEX: "1" };
  },
});

async function appDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) await writeFile(path.join(dir, file), content);
  return dir;
}

describe("build worker (Python)", () => {
  it("builds a venv with the requirements, uploads artifact then manifest, and publishes release 1", async () => {
    const app = uniqueApp("py");
    // pip, whose own output this test reads in the live log (uv's is tested with the installers).
    await stack.api.apps.upsert(app, { buildEnv: { PYTHON_INSTALLER: "pip" } });
    const dir = await appDir(app, { "app.py": "print('hi')\n", "requirements.txt": "hello-tool==1.0\n" });
    const subscriber = stack.api.redis.duplicate();
    const events: string[] = [];
    await subscriber.subscribe(RELEASE_CHANNEL);
    subscriber.on("message", (_channel, message) => events.push(message));

    const queued = await uploadDir(stack.baseUrl, app, dir);
    // Follow the log live from the start, as a user watching the build would.
    const followed = fetch(`${stack.baseUrl}/v1/builds/${queued.id}/logs`, { headers: { Accept: "text/event-stream" } }).then((r) => r.text());
    const build = await waitForBuild(stack.baseUrl, queued.id);
    expect(build.error).toBeUndefined();
    const logEvents = await followed;
    expect(logEvents).toContain("data: Running pip install -r requirements.txt ...");
    expect(logEvents).toMatch(/data: Successfully installed hello-tool-1\.0/);
    expect(logEvents).toMatch(/event: end\ndata: succeeded\n\n$/);
    expect(build).toMatchObject({ status: "succeeded", release: 1, platform: "python" });
    expect(build.platformVersion).toMatch(/^3\.\d+\.\d+$/);
    // Where its time went: each phase in the record (the API's view of it) and in the log.
    const phases = build.phasesMs!;
    for (const phase of ["fetch", "detect", "install", "save cache", "pack", "upload", "publish"]) expect(phases[phase], phase).toBeGreaterThanOrEqual(0);
    expect(Object.keys(phases)[0]).toBe("fetch");
    expect(logEvents).toMatch(/data: Phases: fetch \d+\.\d+ s, detect \d+\.\d+ s, .*install \d+\.\d+ s, .*pack \d+\.\d+ s, upload \d+\.\d+ s, publish \d+\.\d+ s/);

    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, build.id)));
    expect(manifest).toMatchObject({
      platformName: "python",
      virtualEnvName: "antenv",
      compressDestinationDir: true,
      buildId: build.id,
      operationId: build.id,
      appName: app,
      outputFileName: "output.tar.zst",
      outputSha256: build.artifact!.sha256,
      outputBytes: build.artifact!.bytes,
      sourceDirectoryInBuildContainer: path.join(stack.env.SCRATCH_DIR!, build.id),
    });
    expect((await stack.api.store.stat(build.artifact!.key))?.size).toBe(build.artifact!.bytes);

    // The artifact holds the venv with the installed console script.
    const restored = await extractArtifact(stack, build, work);
    expect(existsSync(path.join(restored, "antenv/bin/hello-tool"))).toBe(true);
    expect(existsSync(path.join(restored, "app.py"))).toBe(true);

    const pointer = currentReleasePointerSchema.parse(JSON.parse(await stack.api.store.getText(storageKeys.currentRelease(app))));
    expect(pointer).toMatchObject({ version: 1, buildId: build.id, sha256: build.artifact!.sha256 });
    expect(await stack.api.releases.list(app)).toMatchObject([{ version: 1, buildId: build.id, reason: "build" }]);

    const log = await stack.api.store.getText(storageKeys.buildLog(app, build.id));
    expect(log).toContain("pip install");
    expect(log).toMatch(/Successfully installed hello-tool-1\.0/);
    expect(events.map((e) => JSON.parse(e))).toContainEqual({ app, version: 1, buildId: build.id });
    await subscriber.quit();

    // Scratch space is cleaned whatever happens.
    expect(await readdir(stack.env.SCRATCH_DIR!)).toEqual([]);
  });

  it("fails a build whose pip install fails, keeps its log, and creates no release", async () => {
    const app = uniqueApp("pyfail");
    const dir = await appDir(app, { "app.py": "print('hi')\n", "requirements.txt": "no-such-package-slipway==9.9\n" });
    const queued = await uploadDir(stack.baseUrl, app, dir);
    const build = await waitForBuild(stack.baseUrl, queued.id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/pip install -r requirements.txt failed/);
    expect(build.release).toBeUndefined();
    expect(await stack.api.releases.list(app)).toEqual([]);
    expect(await stack.api.store.exists(storageKeys.manifest(app, build.id))).toBe(false);
    const log = await (await fetch(`${stack.baseUrl}/v1/builds/${build.id}/logs`)).text();
    expect(log).toMatch(/No matching distribution found for no-such-package-slipway/);
    expect(await stack.api.store.getText(storageKeys.buildLog(app, build.id))).toMatch(/No matching distribution/);
  });

  it("builds without releasing when deploy=false", async () => {
    const app = uniqueApp("nodeploy");
    const dir = await appDir(app, { "app.py": "print('hi')\n" });
    const build = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, dir, "?deploy=false")).id);
    expect(build.status).toBe("succeeded");
    expect(build.release).toBeUndefined();
    expect(await stack.api.releases.list(app)).toEqual([]);
  });

  it("fails cleanly on a source with path traversal, writing nothing outside the scratch dir", async () => {
    const app = uniqueApp("evil");
    const target = path.join(os.tmpdir(), `slipway-escape-${app}.txt`);
    const archive = path.join(work, `${app}.tar.gz`);
    writeTarGz(archive, [
      { name: "app.py", content: "print('x')\n" },
      { name: `../../../../../../..${target}`, content: "escaped" },
    ]);
    const build = await waitForBuild(stack.baseUrl, (await uploadFile(stack.baseUrl, app, archive)).id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/source archive was refused: .*escapes the archive root/);
    expect(existsSync(target)).toBe(false);
    expect(await stack.api.releases.list(app)).toEqual([]);
  });

  it("fails cleanly on a corrupted tarball", async () => {
    const app = uniqueApp("corrupt");
    const archive = path.join(work, `${app}.tar.gz`);
    writeTarGz(archive, [{ name: "app.py", content: "x = 1\n".repeat(5000) }]);
    const { readFile } = await import("node:fs/promises");
    const bytes = await readFile(archive);
    await writeFile(archive, Buffer.concat([bytes.subarray(0, 40), Buffer.alloc(200, 0x41), bytes.subarray(240)]));
    const build = await waitForBuild(stack.baseUrl, (await uploadFile(stack.baseUrl, app, archive)).id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/source archive was refused/);
  });
});

describe("zip uploads", () => {
  it("build the same as tar.gz, stored as received under .zip", async () => {
    const { writeZip } = await import("../../../test/harness/zips");
    const { readFile } = await import("node:fs/promises");
    const app = uniqueApp("zip");
    const file = path.join(work, `${app}.zip`);
    writeZip(file, [
      { name: "app.py", content: "print('from zip')\n" },
      { name: "requirements.txt", content: "hello-tool==1.0\n" },
    ]);
    const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/zip" }, body: await readFile(file) });
    expect(response.status).toBe(202);
    const build = await waitForBuild(stack.baseUrl, ((await response.json()) as { id: string }).id);
    expect(build.error).toBeUndefined();
    expect(build.status).toBe("succeeded");
    expect((await stack.api.store.list(`sources/${app}/`))[0]).toMatch(/^sources\/.+\/[0-9a-f]{64}\.zip$/);
    const out = await extractArtifact(stack, build, work);
    expect(existsSync(path.join(out, "antenv/bin/hello-tool"))).toBe(true);

    const notZip = await fetch(`${stack.baseUrl}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/zip" }, body: "PKnot a zip" });
    expect(notZip.status).toBe(400);
  });
});
