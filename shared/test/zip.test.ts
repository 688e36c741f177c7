import { existsSync } from "node:fs";
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeZip } from "../../test/harness/zips";
import { ArchiveLimitError, CorruptArchiveError, extractZip, UnsafeArchiveError } from "../src/archive/index";

let work: string;
beforeEach(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-zip-"));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});
const dest = () => path.join(work, "root", "dest");

describe("extractZip", () => {
  it("extracts files, directories, executable modes and symlinks inside the tree", async () => {
    const file = path.join(work, "app.zip");
    writeZip(file, [
      { name: "app/", mode: 0o040755 },
      { name: "app/main.py", content: "print('hi')\n" },
      { name: "bin/run.sh", content: "#!/bin/sh\necho run\n", mode: 0o100755 },
      { name: "bin/alias", content: "run.sh", mode: 0o120777 },
    ]);
    expect(await extractZip(file, dest())).toEqual({ entries: 4, unpackedBytes: 12 + 19 });
    expect(await readFile(path.join(dest(), "app/main.py"), "utf8")).toBe("print('hi')\n");
    expect((await stat(path.join(dest(), "bin/run.sh"))).mode & 0o111).not.toBe(0);
    expect(await readlink(path.join(dest(), "bin/alias"))).toBe("run.sh");
  });

  const hostile: [string, Parameters<typeof writeZip>[1]][] = [
    ["a ../ member", [{ name: "ok.txt" }, { name: "../escaped.txt", content: "pwned" }]],
    ["an absolute member", [{ name: "/tmp/escaped.txt", content: "pwned" }]],
    ["a symlink out of the root", [{ name: "link", content: "../../..", mode: 0o120777 }]],
    ["a write through a symlink", [{ name: "sub", content: ".", mode: 0o120777 }, { name: "sub/x.txt", content: "x" }]],
    ["a FIFO", [{ name: "pipe", mode: 0o010644 }]],
    ["a duplicate name", [{ name: "a.txt", content: "1" }, { name: "a.txt", content: "2" }]],
  ];
  for (const [label, entries] of hostile) {
    it(`refuses ${label}, writing nothing outside`, async () => {
      const file = path.join(work, "hostile.zip");
      writeZip(file, entries);
      await expect(extractZip(file, dest())).rejects.toThrow(UnsafeArchiveError);
      expect(existsSync(path.join(work, "root", "escaped.txt"))).toBe(false);
    });
  }

  it("refuses garbage and enforces limits", async () => {
    const garbage = path.join(work, "garbage.zip");
    await writeFile(garbage, "PK\x03\x04 but not really a zip file at all");
    await expect(extractZip(garbage, dest())).rejects.toThrow(CorruptArchiveError);
    const many = path.join(work, "many.zip");
    writeZip(many, Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, content: "0123456789" })));
    await expect(extractZip(many, dest(), { maxEntries: 3 })).rejects.toThrow(ArchiveLimitError);
    await expect(extractZip(many, dest(), { maxUnpackedBytes: 20 })).rejects.toThrow(ArchiveLimitError);
  });
});
