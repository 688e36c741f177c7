import { execFileSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArchiveLimitError,
  createLogger,
  extractArchive,
  extractStream,
  extractZip,
  freePort,
  inspectArchive,
  loadAgentConfig,
  packDirectory,
  parseManifest,
  RELEASE_CHANNEL,
  recordedSizeLimits,
  serializeManifest,
  storageKeys,
  UnsafeArchiveError,
  type BuildManifest,
  type InstanceReport,
} from "@slipway/shared";
import { RuntimeAgent } from "../../services/runtime-agent/src/agent";
import { labelApp } from "../harness/apps";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { startInProcessStack, uploadDir, uploadFile, waitForBuild, writeTree, type BuildView, type InProcessStack } from "../harness/stack";
import { writeTarGz, type TarEntry } from "../harness/tarballs";
import { writeZip } from "../harness/zips";

const MiB = 1024 * 1024;
/** The stack's source limit: a sparse entry must not get past it by claiming a few bytes. */
const MAX_UNPACKED_BYTES = 64 * MiB;
/** The agent's cap, below the hostile release's unpacked size and above a normal release's. */
const MAX_RESTORE_BYTES = 150 * MiB;
const HOSTILE_BYTES = 200 * MiB;

let stack: InProcessStack;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-security-archives-"));
  stack = await startInProcessStack({ MAX_UNPACKED_BYTES: String(MAX_UNPACKED_BYTES) });
});

afterAll(async () => {
  await stack?.close();
  await rm(work, { recursive: true, force: true });
});

/** A directory for one test's files. */
const scratch = () => mkdtemp(path.join(work, "t-"));

/** A tar.gz holding app.py and a 1 GiB sparse file, as GNU tar writes it in `format`. */
async function sparseTarball(format: "gnu" | "pax"): Promise<string> {
  const dir = await scratch();
  const src = path.join(dir, "src");
  await writeTree(src, { "app.py": "print('hi')\n" });
  execFileSync("truncate", ["-s", "1G", path.join(src, "big")]);
  const file = path.join(dir, `sparse-${format}.tar.gz`);
  execFileSync("tar", [`--format=${format}`, "--sparse", "-czf", file, "-C", src, "."]);
  // The whole attack: a gigabyte in a few hundred bytes.
  expect((await readFile(file)).length).toBeLessThan(4096);
  return file;
}

/**
 * A tar.gz in which an old GNU 'N' header names a symbolic link `vetted` for node tar, while GNU
 * tar, which does not know 'N', extracts it under the header's own name, `written`.
 */
function smuggledLinkTarball(file: string, vetted: string, written: string, target: string): void {
  const script = `
import gzip, io, sys, tarfile
vetted, written, target = sys.argv[2:5]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
    app = tarfile.TarInfo("app.py"); app.size = 12; tar.addfile(app, io.BytesIO(b"print('hi')\\n"))
    link = tarfile.TarInfo("x" * 120); link.type = tarfile.SYMTYPE; link.linkname = target; tar.addfile(link)
data = bytearray(buf.getvalue())
def field(off, start, width, value):
    data[off + start:off + start + width] = value.ljust(width, b"\\0")
def checksum(off):
    data[off + 148:off + 156] = b" " * 8
    data[off + 148:off + 156] = b"%06o\\0 " % sum(data[off:off + 512])
long_header = 1024  # app.py's header and its one data block come first
assert data[long_header + 156] == ord("L")
data[long_header + 156] = ord("N")
name = vetted.encode() + b"\\0"
field(long_header, 124, 12, b"%011o" % len(name))
field(long_header + 512, 0, 512, name)
checksum(long_header)
field(long_header + 1024, 0, 100, written.encode())
checksum(long_header + 1024)
open(sys.argv[1], "wb").write(gzip.compress(bytes(data)))
`;
  execFileSync("python3", ["-c", script, file, vetted, written, target]);
}

async function uploadZip(app: string, file: string): Promise<BuildView> {
  const response = await fetch(`${stack.baseUrl}/v1/apps/${app}/builds`, { method: "POST", headers: { "Content-Type": "application/zip" }, body: await readFile(file) });
  expect(response.status).toBe(202);
  return (await response.json()) as BuildView;
}

async function buildLog(app: string, id: string): Promise<string> {
  return stack.api.store.getText(storageKeys.buildLog(app, id));
}

describe("sparse tar entries", () => {
  for (const format of ["gnu", "pax"] as const) {
    it(`fail a build whose source holds a ${format.toUpperCase()} sparse file, extracting nothing`, async () => {
      const file = await sparseTarball(format);
      const dest = path.join(await scratch(), "dest");
      await expect(extractArchive(file, dest, { maxUnpackedBytes: MAX_UNPACKED_BYTES })).rejects.toThrow(UnsafeArchiveError);
      expect(existsSync(dest)).toBe(false);

      const app = uniqueApp(`sparse-${format}`);
      const build = await waitForBuild(stack.baseUrl, (await uploadFile(stack.baseUrl, app, file)).id);
      expect(build.status).toBe("failed");
      expect(build.error).toMatch(/^the source archive was refused: .*sparse file.*: sparse files are refused/);
      expect(await stack.api.releases.list(app)).toEqual([]);
    });

    it(`refuse a ${format.toUpperCase()} sparse file in a restored artifact before any of it is written`, async () => {
      const file = await sparseTarball(format);
      const dest = path.join(await scratch(), "dest");
      await expect(extractStream(createReadStream(file), dest, { allowExternalSymlinks: true })).rejects.toThrow(/sparse files are refused/);
      expect(existsSync(path.join(dest, "big"))).toBe(false);
    });
  }
});

describe("symbolic link chains whose every hop looks inside", () => {
  const passwdLine = (execFileSync("head", ["-n", "1", "/etc/passwd"]).toString().trim() || "root:x:0:0").slice(0, 20);
  const chain: TarEntry[] = [
    { name: "app.py", content: "print('hi')\n" },
    { name: "d", type: "symlink", target: "." },
    { name: "f", type: "symlink", target: "d/d/d/d/d/../../../../.." },
    { name: "build.env", type: "symlink", target: "f/etc/passwd" },
  ];

  it("fail a tar.gz build, with /etc/passwd nowhere in its log and nothing extracted", async () => {
    const dir = await scratch();
    const file = path.join(dir, "chain.tar.gz");
    writeTarGz(file, chain);
    await expect(extractArchive(file, path.join(dir, "dest"))).rejects.toThrow(/symbolic link "f" leads outside the archive/);
    expect(existsSync(path.join(dir, "dest"))).toBe(false);

    const app = uniqueApp("chain-tar");
    const build = await waitForBuild(stack.baseUrl, (await uploadFile(stack.baseUrl, app, file)).id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^the source archive was refused: symbolic link "f" leads outside the archive/);
    expect(await buildLog(app, build.id)).not.toContain(passwdLine);
    expect(await (await fetch(`${stack.baseUrl}/v1/builds/${build.id}/logs`)).text()).not.toContain(passwdLine);
  });

  it("fail a zip build the same way", async () => {
    const dir = await scratch();
    const file = path.join(dir, "chain.zip");
    writeZip(
      file,
      chain.map((e) => (e.type === "symlink" ? { name: e.name, content: e.target, mode: 0o120777 } : { name: e.name, content: e.content })),
    );
    await expect(extractZip(file, path.join(dir, "dest"))).rejects.toThrow(/symbolic link "f" leads outside the archive/);
    expect(existsSync(path.join(dir, "dest"))).toBe(false);

    const app = uniqueApp("chain-zip");
    const build = await waitForBuild(stack.baseUrl, (await uploadZip(app, file)).id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^the source archive was refused: symbolic link "f" leads outside the archive/);
    expect(await buildLog(app, build.id)).not.toContain(passwdLine);
  });

  it("fail a build whose link GNU tar names differently than the vetting (an old GNU 'N' header)", async () => {
    const dir = await scratch();
    const file = path.join(dir, "smuggled.tar.gz");
    // From ten directories down the target is the tree's own etc/passwd; from the root, the host's.
    const deep = "d/".repeat(10);
    smuggledLinkTarball(file, `${deep}build.env`, "build.env", `${"../".repeat(10)}etc/passwd`);
    const dest = path.join(dir, "dest");
    await expect(extractArchive(file, dest)).rejects.toThrow(/GNU tar and node tar read differently: .*Unknown file type 'N'/);

    const app = uniqueApp("smuggle");
    const build = await waitForBuild(stack.baseUrl, (await uploadFile(stack.baseUrl, app, file)).id);
    expect(build.status).toBe("failed");
    expect(build.error).toMatch(/^the source archive was refused: the archive holds an entry GNU tar and node tar read differently/);
    expect(await buildLog(app, build.id)).not.toContain(passwdLine);
  });

  const hostile: [string, TarEntry[], RegExp][] = [
    [
      "a link that a later link turns outward",
      [
        { name: "a", type: "symlink", target: "s/b/../.." },
        { name: "s/b", type: "symlink", target: "." },
      ],
      /symbolic link "a" leads outside/,
    ],
    [
      "a hard link copying a symbolic link into a shallower directory",
      [
        { name: "x/y/l", type: "symlink", target: "../.." },
        { name: "h", type: "hardlink", target: "x/y/l" },
      ],
      /hard link "h" \(to the symbolic link "x\/y\/l"\) leads outside/,
    ],
    ["a loop", [{ name: "a", type: "symlink", target: "b" }, { name: "b", type: "symlink", target: "a" }], /symbolic link "a" goes through too many symbolic links/],
    ["a .. after a link", [{ name: "d", type: "symlink", target: "." }, { name: "d/../x", content: "x" }], /has a "\.\." component/],
    ["a file replacing a link", [{ name: "l", type: "symlink", target: "." }, { name: "l", content: "x" }], /would replace the symbolic link/],
  ];
  for (const [label, entries, message] of hostile) {
    it(`refuse ${label}`, async () => {
      const dir = await scratch();
      const file = path.join(dir, "hostile.tar.gz");
      writeTarGz(file, entries);
      await expect(inspectArchive(file)).rejects.toThrow(message);
    });
  }

  it("refuse a global pax header renaming the entries after it, which only GNU tar applies", async () => {
    const file = path.join(await scratch(), "global.tar.gz");
    const script = `
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.PAX_FORMAT, pax_headers={"path": "d/renamed"}) as tar:
    info = tarfile.TarInfo("app.py"); info.size = 1; tar.addfile(info, io.BytesIO(b"x"))
`;
    execFileSync("python3", ["-c", script, file]);
    expect(execFileSync("tar", ["-tzf", file]).toString().trim()).toBe("d/renamed");
    await expect(inspectArchive(file)).rejects.toThrow(/a global pax header sets "path" for every entry after it/);
  });

  it("still allow links that stay inside, through other links", async () => {
    const dir = await scratch();
    const file = path.join(dir, "ok.tar.gz");
    writeTarGz(file, [
      { name: "lib/python/site.py", content: "x" },
      { name: "lib64", type: "symlink", target: "lib" },
      { name: "bin/site", type: "symlink", target: "../lib64/python/site.py" },
      { name: "here", type: "symlink", target: "bin/../lib64/.." },
    ]);
    await extractArchive(file, path.join(dir, "dest"));
    expect(await readFile(path.join(dir, "dest", "bin", "site"), "utf8")).toBe("x");
  });
});

describe("recorded unpacked size", () => {
  it("is what pack counts, in gzip and zstd, and the manifest round-trips it", async () => {
    const src = await writeTree(path.join(await scratch(), "tree"), { "app.py": "0123456789", "pkg/mod.py": "01234567890123456789" });
    await symlink("../app.py", path.join(src, "pkg", "alias.py"));
    for (const compression of ["gzip", "zstd"] as const) {
      const packed = await packDirectory(src, path.join(work, `${randomUUID()}.tar`), compression);
      // ".", app.py, pkg, pkg/mod.py, pkg/alias.py
      expect(packed).toMatchObject({ unpackedBytes: 30, entries: 5 });
    }
    const manifest: BuildManifest = { platformName: "python", compressDestinationDir: true, outputUnpackedBytes: 30, outputEntryCount: 5, other: {} };
    const text = serializeManifest(manifest);
    expect(text).toContain('OutputUnpackedBytes = "30"');
    expect(text).toContain('OutputEntryCount = "5"');
    expect(parseManifest(text)).toEqual(manifest);
    expect(() => parseManifest('PlatformName = "python"\nOutputUnpackedBytes = "lots"')).toThrow(/OutputUnpackedBytes is not a count/);
  });

  it("stops an extraction at the header of the first entry past it, before writing that entry", async () => {
    const dir = await scratch();
    const src = await writeTree(path.join(dir, "tree"), { "a.txt": "a" });
    execFileSync("truncate", ["-s", "100M", path.join(src, "zeros")]);
    const packed = await packDirectory(src, path.join(dir, "out.tar.zst"), "zstd");
    const caps = { maxUnpackedBytes: 1024 * MiB, maxEntries: 1000, names: { unpackedBytes: "MAX_RESTORE_BYTES", entries: "MAX_RESTORE_ENTRIES" } };

    const dest = path.join(dir, "dest");
    const limits = recordedSizeLimits({ unpackedBytes: 10, entries: packed.entries }, caps, "recorded in its manifest");
    const refused = extractStream(createReadStream(packed.file), dest, { compression: "zstd", allowExternalSymlinks: true, ...limits });
    await expect(refused).rejects.toThrow(ArchiveLimitError);
    await expect(refused).rejects.toThrow("archive unpacks to more than 10 bytes (recorded in its manifest)");
    expect(existsSync(path.join(dest, "zeros"))).toBe(false);

    const capped = recordedSizeLimits({}, { ...caps, maxUnpackedBytes: 10 * MiB });
    await expect(extractStream(createReadStream(packed.file), path.join(dir, "dest2"), { compression: "zstd", ...capped })).rejects.toThrow(
      `archive unpacks to more than ${10 * MiB} bytes (MAX_RESTORE_BYTES)`,
    );
    expect(existsSync(path.join(dir, "dest2", "zeros"))).toBe(false);

    const fewer = recordedSizeLimits({ unpackedBytes: packed.unpackedBytes, entries: 2 }, caps, "recorded in its manifest");
    await expect(extractStream(createReadStream(packed.file), path.join(dir, "dest3"), { compression: "zstd", ...fewer })).rejects.toThrow(
      "archive holds more than 2 entries (recorded in its manifest)",
    );

    // What was recorded is exactly enough.
    const exact = recordedSizeLimits(packed, caps);
    await expect(extractStream(createReadStream(packed.file), path.join(dir, "dest4"), { compression: "zstd", ...exact })).resolves.toEqual({
      unpackedBytes: packed.unpackedBytes,
      entries: packed.entries,
    });
  });
});

describe("runtime agent restores stop past the recorded size or MAX_RESTORE_BYTES", () => {
  let app: string;
  let agent: RuntimeAgent;
  let instanceUrl: string;
  let runtimeRoot: string;
  let big: BuildView;

  const body = async () => (await fetch(instanceUrl)).text();

  async function release(buildId: string): Promise<number> {
    const { release } = (await stack.api.releases.create(app, buildId, "manual"))!;
    await stack.api.redis.publish(RELEASE_CHANNEL, JSON.stringify({ app, version: release.version, buildId }));
    return release.version;
  }

  async function expectFailedKeepingV1(version: number, reason: RegExp): Promise<InstanceReport> {
    const report = await eventually(async () => {
      const r = (await stack.api.instances.list(app)).find((i) => i.instanceId === "i-1");
      return r?.state === "failed" && r.release === version ? r : undefined;
    }, 30_000, `release ${version} reported failed`);
    expect(report.error).toMatch(reason);
    expect(await body()).toBe("v1");
    // The refused extraction is gone: only v1's directory remains.
    expect((await readdir(path.join(runtimeRoot, "releases"))).filter((name) => name.startsWith(".partial-"))).toEqual([]);
    return report;
  }

  /** Rewrites the stored manifest of `build` with `change`; the artifact and its sha256 stay as built. */
  async function editManifest(build: BuildView, change: (manifest: BuildManifest) => void): Promise<void> {
    const key = storageKeys.manifest(app, build.id);
    const manifest = parseManifest(await stack.api.store.getText(key));
    change(manifest);
    await stack.api.store.putBuffer(key, serializeManifest(manifest));
  }

  beforeAll(async () => {
    app = uniqueApp("restore-cap");
    runtimeRoot = path.join(work, "runtime");
    instanceUrl = `http://127.0.0.1:${await freePort()}`;
    const v1 = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, await writeTree(path.join(work, "v1"), { "app.py": labelApp("v1") }))).id);
    expect(v1.status).toBe("succeeded");
    // A build that writes a large output, packed small: the release every instance would expand.
    const bigSource = await writeTree(path.join(work, "big"), {
      "app.py": labelApp("big"),
      "build.env": `POST_BUILD_COMMAND=truncate -s ${HOSTILE_BYTES} filler.bin\n`,
    });
    big = await waitForBuild(stack.baseUrl, (await uploadDir(stack.baseUrl, app, bigSource, "?deploy=false")).id);
    expect(big.status).toBe("succeeded");
    expect(big.artifact!.bytes).toBeLessThan(MAX_RESTORE_BYTES / 10);

    const config = loadAgentConfig({
      ...stack.env,
      APP: app,
      INSTANCE_ID: "i-1",
      PORT: new URL(instanceUrl).port,
      RUNTIME_ROOT: runtimeRoot,
      HEALTH_TIMEOUT_S: "10",
      RECONCILE_INTERVAL_S: "3600",
      MAX_RESTORE_BYTES: String(MAX_RESTORE_BYTES),
    });
    agent = new RuntimeAgent(config, stack.api.redis, stack.api.store, createLogger("security-agent", "silent"));
    await agent.start();
    await eventually(async () => ((await body()) === "v1" ? true : undefined), 30_000, "v1 serving");
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
  });

  it("the build worker records what the output unpacks to", async () => {
    const manifest = parseManifest(await stack.api.store.getText(storageKeys.manifest(app, big.id)));
    expect(manifest.outputUnpackedBytes).toBeGreaterThanOrEqual(HOSTILE_BYTES);
    expect(manifest.outputEntryCount).toBeGreaterThan(1);
  });

  it("refuses an artifact that unpacks past its manifest's OutputUnpackedBytes, checksum matching", async () => {
    const artifact = await stack.api.store.getStream(big.artifact!.key);
    const hash = createHash("sha256");
    for await (const chunk of artifact) hash.update(chunk as Buffer);
    await editManifest(big, (manifest) => {
      expect(manifest.outputSha256).toBe(hash.digest("hex"));
      manifest.outputUnpackedBytes = 64 * 1024;
    });
    await expectFailedKeepingV1(await release(big.id), /^artifact refused: archive unpacks to more than 65536 bytes \(recorded in its manifest\)$/);
  });

  it("refuses an artifact past MAX_RESTORE_BYTES when its manifest records no size (as Oryx's do not)", async () => {
    await editManifest(big, (manifest) => {
      delete manifest.outputUnpackedBytes;
      delete manifest.outputEntryCount;
    });
    const text = await stack.api.store.getText(storageKeys.manifest(app, big.id));
    expect(text).not.toMatch(/OutputUnpackedBytes|OutputEntryCount/);
    await expectFailedKeepingV1(await release(big.id), new RegExp(`^artifact refused: archive unpacks to more than ${MAX_RESTORE_BYTES} bytes \\(MAX_RESTORE_BYTES\\)$`));
  });
});

describe("pack", () => {
  it("refuses an output a restore would refuse (a FIFO), naming it", async () => {
    const dir = await writeTree(path.join(await scratch(), "tree"), { "app.py": "x" });
    execFileSync("mkfifo", [path.join(dir, "pipe")]);
    await mkdir(path.join(dir, "sub"));
    await writeFile(path.join(dir, "sub", "y"), "y");
    await expect(packDirectory(dir, path.join(work, "fifo.tar.zst"), "zstd")).rejects.toThrow(/entry "\.\/pipe" is a FIFO, which is never extracted/);
  });
});
