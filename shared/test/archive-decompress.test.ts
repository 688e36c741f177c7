import { execFileSync } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeTarGz } from "../../test/harness/tarballs";
import { ArchiveLimitError, extractStream, packDirectory, UnsafeArchiveError } from "../src/archive/index";

let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-decompress-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

const dest = () => path.join(work, "root", "dest");

/** Runs `body` with only GNU tar (and no gzip) on the PATH. */
async function withOnlyTarOnPath<T>(body: () => Promise<T>): Promise<T> {
  const bin = path.join(work, "bin");
  await mkdir(bin);
  await symlink(execFileSync("sh", ["-c", "command -v tar"], { encoding: "utf8" }).trim(), path.join(bin, "tar"));
  const saved = process.env.PATH;
  process.env.PATH = bin;
  try {
    return await body();
  } finally {
    process.env.PATH = saved;
  }
}

describe("extractStream decompresses once, feeding the vetting and GNU tar the same bytes", () => {
  it("extracts gzip in-process: no gzip program is needed", async () => {
    const src = path.join(work, "tree");
    await mkdir(path.join(src, "pkg"), { recursive: true });
    await writeFile(path.join(src, "pkg", "mod.py"), "x = 1\n".repeat(5000));
    const packed = await packDirectory(src, path.join(work, "out.tar.gz"), "gzip");
    const summary = await withOnlyTarOnPath(() => extractStream(createReadStream(packed.file), dest(), { compression: "gzip" }));
    expect(summary).toEqual({ entries: packed.entries, unpackedBytes: packed.unpackedBytes });
    expect(await readFile(path.join(dest(), "pkg", "mod.py"), "utf8")).toBe("x = 1\n".repeat(5000));
  });

  it("still refuses a traversal in a gzip stream, writing nothing outside", async () => {
    const gz = path.join(work, "hostile.tar.gz");
    writeTarGz(gz, [{ name: "ok.txt", content: "x" }, { name: "../escaped.txt", content: "pwned" }]);
    await expect(extractStream(createReadStream(gz), dest(), { compression: "gzip" })).rejects.toThrow(UnsafeArchiveError);
    expect(existsSync(path.join(work, "root", "escaped.txt"))).toBe(false);
  });

  it("stops a gzip stream at the header of an entry past the size limit, before writing it", async () => {
    const src = path.join(work, "tree");
    await mkdir(src);
    await writeFile(path.join(src, "a.txt"), "a");
    await writeFile(path.join(src, "big.bin"), Buffer.alloc(8 * 1024 * 1024, 7));
    const packed = await packDirectory(src, path.join(work, "out.tar.gz"), "gzip");
    const refused = extractStream(createReadStream(packed.file), dest(), { compression: "gzip", maxUnpackedBytes: 1024 });
    await expect(refused).rejects.toThrow(ArchiveLimitError);
    expect(existsSync(path.join(dest(), "big.bin"))).toBe(false);
  });

  it("refuses a compressed stream inside the compression, which node tar and GNU tar would read differently", async () => {
    const gz = path.join(work, "inner.tar.gz");
    writeTarGz(gz, [{ name: "ok.txt", content: "x" }]);
    const zst = path.join(work, "double.tar.zst");
    execFileSync("zstd", ["-q", "-c", gz, "-o", zst]);
    await expect(extractStream(createReadStream(zst), dest(), { compression: "zstd" })).rejects.toThrow(/holds gzip data inside its compression/);
    const doubleGz = path.join(work, "double.tar.gz");
    await writeFile(doubleGz, gzipSync(await readFile(gz)));
    await expect(extractStream(createReadStream(doubleGz), dest(), { compression: "gzip" })).rejects.toThrow(/holds gzip data inside its compression/);
  });

  it("refuses gzip that decompresses past node tar's ratio (zeros after the archive's end)", async () => {
    const tar = path.join(work, "small.tar.gz");
    writeTarGz(tar, [{ name: "ok.txt", content: "x" }]);
    const bomb = path.join(work, "bomb.tar.gz");
    const inner = execFileSync("gzip", ["-dc", tar]);
    await writeFile(bomb, gzipSync(Buffer.concat([inner, Buffer.alloc(16 * 1024 * 1024)]), { level: 9 }));
    await expect(extractStream(createReadStream(bomb), dest(), { compression: "gzip" })).rejects.toThrow(/decompression bomb/);
  });
});
