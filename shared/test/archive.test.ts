import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile, chmod, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { archivePastItsEnd, chunkDigests, packedInChunks as packedFixture, treeListing } from "../../test/harness/chunked";
import { writeTarGz } from "../../test/harness/tarballs";
import { Readable } from "node:stream";
import {
  ArchiveLimitError,
  ChunkVerificationError,
  CorruptArchiveError,
  extractArchive,
  extractChunkVerified,
  packDirectory,
  UnsafeArchiveError,
  type Compression,
} from "../src/archive/index";

let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-archive-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const dest = () => path.join(work, "root", "dest");

describe("extractArchive refuses archives that escape", () => {
  const hostile: [string, Parameters<typeof writeTarGz>[1]][] = [
    ["a ../ member", [{ name: "ok.txt", content: "x" }, { name: "../escaped.txt", content: "pwned" }]],
    ["a nested ../ member", [{ name: "a/../../escaped.txt", content: "pwned" }]],
    ["an absolute member", [{ name: path.join(work ?? "/tmp", "escaped.txt"), content: "pwned" }]],
    ["a symlink out of the root", [{ name: "link", type: "symlink", target: "../../" }]],
    ["an absolute symlink", [{ name: "link", type: "symlink", target: "/etc" }]],
    ["a write through a symlink", [{ name: "sub", type: "symlink", target: "." }, { name: "sub/x.txt", content: "via link" }]],
    ["a hard link out of the root", [{ name: "hard", type: "hardlink", target: "../escaped.txt" }]],
    ["an absolute hard link", [{ name: "hard", type: "hardlink", target: "/etc/passwd" }]],
    ["a FIFO", [{ name: "pipe", type: "fifo" }]],
  ];

  for (const [label, entries] of hostile) {
    it(`with ${label}`, async () => {
      const file = path.join(work, "hostile.tar.gz");
      const fixed = entries.map((e) => (e.name.startsWith("/") ? { ...e, name: path.join(work, "escaped.txt") } : e));
      writeTarGz(file, fixed);
      await expect(extractArchive(file, dest())).rejects.toThrow(UnsafeArchiveError);
      expect(existsSync(path.join(work, "escaped.txt"))).toBe(false);
      expect(existsSync(path.join(work, "root", "escaped.txt"))).toBe(false);
      // Nothing at all is written when the vetting fails.
      expect(existsSync(dest())).toBe(false);
    });
  }
});

describe("extractArchive", () => {
  it("rejects bytes that are not a tarball, and a truncated one", async () => {
    const garbage = path.join(work, "garbage.tar.gz");
    await writeFile(garbage, Buffer.from("definitely not gzip at all, just text"));
    await expect(extractArchive(garbage, dest())).rejects.toThrow(CorruptArchiveError);

    const good = path.join(work, "good.tar.gz");
    writeTarGz(good, [{ name: "big.txt", content: "y".repeat(200_000) }]);
    const bytes = await readFile(good);
    const truncated = path.join(work, "truncated.tar.gz");
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(extractArchive(truncated, dest())).rejects.toThrow(CorruptArchiveError);
  });

  it("enforces entry and size limits", async () => {
    const file = path.join(work, "many.tar.gz");
    writeTarGz(file, Array.from({ length: 20 }, (_, i) => ({ name: `f${i}.txt`, content: "0123456789" })));
    await expect(extractArchive(file, dest(), { maxEntries: 10 })).rejects.toThrow(ArchiveLimitError);
    await expect(extractArchive(file, dest(), { maxUnpackedBytes: 100 })).rejects.toThrow(ArchiveLimitError);
    await expect(extractArchive(file, dest(), { maxEntries: 20, maxUnpackedBytes: 200 })).resolves.toEqual({ entries: 20, unpackedBytes: 200 });
  });

  it("allows a symlink to an outside interpreter only when asked (build artifacts)", async () => {
    const file = path.join(work, "venv.tar.gz");
    writeTarGz(file, [{ name: "antenv/bin/python", type: "symlink", target: "/usr/bin/python3" }]);
    await expect(extractArchive(file, dest())).rejects.toThrow(UnsafeArchiveError);
    await extractArchive(file, dest(), { allowExternalSymlinks: true });
    expect(await readlink(path.join(dest(), "antenv/bin/python"))).toBe("/usr/bin/python3");
  });

  it("round-trips a packed tree with modes, links inside the tree and nested dirs", async () => {
    const src = path.join(work, "src");
    await mkdir(path.join(src, "antenv/bin"), { recursive: true });
    await writeFile(path.join(src, "app.py"), "print('hi')\n");
    await writeFile(path.join(src, "antenv/bin/tool"), "#!/bin/sh\necho tool\n");
    await chmod(path.join(src, "antenv/bin/tool"), 0o755);
    await symlink("tool", path.join(src, "antenv/bin/tool-alias"));
    const packed = await packDirectory(src, path.join(work, "out.tar.gz"));
    expect(packed.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(packed.bytes).toBe((await stat(packed.file)).size);

    const summary = await extractArchive(packed.file, dest());
    expect(summary.entries).toBeGreaterThanOrEqual(5);
    expect(await readFile(path.join(dest(), "app.py"), "utf8")).toBe("print('hi')\n");
    expect((await stat(path.join(dest(), "antenv/bin/tool"))).mode & 0o111).not.toBe(0);
    expect(await readlink(path.join(dest(), "antenv/bin/tool-alias"))).toBe("tool");
  });
});

describe("zstd and gzip", () => {
  it("packs and extracts the same tree with either compression, streaming", async () => {
    const { createReadStream } = await import("node:fs");
    const { extractStream } = await import("../src/archive/index");
    const src = path.join(work, "tree");
    await mkdir(path.join(src, "antenv/bin"), { recursive: true });
    await writeFile(path.join(src, "app.py"), "print('hi')\n".repeat(1000));
    await symlink("/usr/bin/python3", path.join(src, "antenv/bin/python"));
    for (const compression of ["zstd", "gzip"] as const) {
      const packed = await packDirectory(src, path.join(work, `out-${compression}`), compression);
      const head = (await readFile(packed.file)).subarray(0, 4);
      expect(head[0]).toBe(compression === "gzip" ? 0x1f : 0x28); // gzip magic / zstd frame magic
      const out = path.join(work, `restored-${compression}`);
      await extractStream(createReadStream(packed.file), out, { compression, allowExternalSymlinks: true });
      expect(await readFile(path.join(out, "app.py"), "utf8")).toBe("print('hi')\n".repeat(1000));
      expect(await readlink(path.join(out, "antenv/bin/python"))).toBe("/usr/bin/python3");
    }
  });

  it("vets zstd archives too", async () => {
    const { createReadStream } = await import("node:fs");
    const { execFileSync } = await import("node:child_process");
    const { extractStream } = await import("../src/archive/index");
    const gz = path.join(work, "hostile.tar.gz");
    writeTarGz(gz, [{ name: "ok.txt", content: "x" }, { name: "../escaped.txt", content: "pwned" }]);
    const zst = path.join(work, "hostile.tar.zst");
    execFileSync("sh", ["-c", `gzip -dc '${gz}' | zstd -q -c > '${zst}'`]);
    await expect(extractStream(createReadStream(zst), dest(), { compression: "zstd" })).rejects.toThrow(UnsafeArchiveError);
    expect(existsSync(path.join(work, "root", "escaped.txt"))).toBe(false);
  });
});

describe("extractChunkVerified", () => {
  const packedInChunks = (compression: Compression, chunkBytes: number) => packedFixture(work, compression, chunkBytes);

  for (const compression of ["zstd", "gzip"] as const) {
    it(`extracts a ${compression} artifact whose every chunk matches, modes and times as packed`, async () => {
      const { src, packed, chunkSha256s } = await packedInChunks(compression, 4096);
      expect(chunkSha256s.length).toBeGreaterThan(3);
      await extractChunkVerified(createReadStream(packed.file), dest(), { compression, chunkBytes: 4096, chunkSha256s });
      expect(treeListing(dest())).toEqual(treeListing(src));
    });
  }

  it("passes tar no byte of a chunk that differs from its digest", async () => {
    const { bytes, chunkSha256s } = await packedInChunks("zstd", 4096);
    const tampered = Buffer.from(bytes);
    tampered[10] = tampered[10]! ^ 0xff;
    const refused = extractChunkVerified(Readable.from([tampered]), dest(), { compression: "zstd", chunkBytes: 4096, chunkSha256s });
    await expect(refused).rejects.toThrow(ChunkVerificationError);
    await expect(refused).rejects.toThrow(/its sha256 differs from the manifest's in chunk 1 of \d+/);
    expect(await readdir(dest())).toEqual([]);
  });

  it("extracts an archive whose tar stream goes on past its end-of-archive blocks, where GNU tar stops reading", async () => {
    const bytes = await archivePastItsEnd(work);
    await extractChunkVerified(Readable.from([bytes]), dest(), { compression: "zstd", chunkBytes: 4096, chunkSha256s: chunkDigests(bytes, 4096) });
    expect(await readFile(path.join(dest(), "app.py"), "utf8")).toBe("print('hi')\n");
  });

  it("fails on bytes that match their digests but do not decompress, with the decompressor's reason", async () => {
    const garbage = Buffer.from("not a zstd stream at all");
    const refused = extractChunkVerified(Readable.from([garbage]), dest(), { compression: "zstd", chunkBytes: 4096, chunkSha256s: chunkDigests(garbage, 4096) });
    await expect(refused).rejects.toThrow(CorruptArchiveError);
    await expect(refused).rejects.toThrow(/zstd could not read the archive: .*unsupported format/);
  });

  it("refuses an artifact cut short or running on past its recorded chunks", async () => {
    const { bytes, chunkSha256s } = await packedInChunks("gzip", 4096);
    const cut = bytes.subarray(0, 4096 * 2);
    await expect(extractChunkVerified(Readable.from([cut]), path.join(work, "cut"), { compression: "gzip", chunkBytes: 4096, chunkSha256s })).rejects.toThrow(/it ends after 2 of its \d+ recorded chunks/);
    const longer = Buffer.concat([bytes, Buffer.alloc(4096)]);
    await expect(extractChunkVerified(Readable.from([longer]), path.join(work, "longer"), { compression: "gzip", chunkBytes: 4096, chunkSha256s })).rejects.toThrow(ChunkVerificationError);
  });
});
