import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HashingStream, packDirectory, sealTree, type Compression } from "@slipway/shared";

/**
 * A small tree packed as the worker packs it (sealed), its chunk digests taken at `chunkBytes`
 * so that a few KB make several chunks.
 */
export async function packedInChunks(work: string, compression: Compression, chunkBytes: number) {
  const src = path.join(work, "src");
  await mkdir(path.join(src, "antenv", "bin"), { recursive: true });
  for (let i = 0; i < 20; i++) await writeFile(path.join(src, `file-${i}.txt`), `${i}:${randomBytes(2000).toString("hex")}\n`);
  await writeFile(path.join(src, "antenv", "bin", "tool"), "#!/bin/sh\necho tool\n", { mode: 0o755 });
  await symlink("tool", path.join(src, "antenv", "bin", "tool-link"));
  await sealTree(src);
  const packed = await packDirectory(src, path.join(work, `out.tar.${compression === "zstd" ? "zst" : "gz"}`), compression);
  const hashing = new HashingStream(chunkBytes);
  await pipeline(createReadStream(packed.file), hashing, new Writable({ write: (_chunk, _encoding, done) => done() }));
  return { src, packed, bytes: await readFile(packed.file), chunkSha256s: hashing.chunkSha256s };
}

/** Every entry under `dir` with its type, mode, size, modification time and link target, sorted. */
export function treeListing(dir: string): string {
  return execFileSync("find", [".", "-printf", "%p %y %m %s %Ts %l\\n"], { cwd: dir, encoding: "utf8" }).split("\n").sort().join("\n");
}
