import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
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

/** The sha256 of each `chunkBytes` of `bytes`, as the packer records them. */
export function chunkDigests(bytes: Buffer, chunkBytes: number): string[] {
  return Array.from({ length: Math.ceil(bytes.length / chunkBytes) }, (_, i) => createHash("sha256").update(bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes)).digest("hex"));
}

/**
 * A zstd artifact holding `app.py`, its tar stream going on for 8 MiB past the end-of-archive
 * blocks, where GNU tar stops reading: more than the pipes between zstd and tar hold, so zstd is
 * still writing when tar has gone.
 */
export async function archivePastItsEnd(work: string): Promise<Buffer> {
  const tree = path.join(work, "past-its-end");
  await mkdir(tree);
  await writeFile(path.join(tree, "app.py"), "print('hi')\n");
  const tarStream = Buffer.concat([execFileSync("tar", ["-cf", "-", "-C", tree, "app.py"]), Buffer.alloc(8 * 1024 * 1024)]);
  return zstdCompress(tarStream);
}

/** What `zstd -c` makes of `data`. */
export const zstdCompress = (data: Buffer): Buffer => execFileSync("zstd", ["-c"], { input: data, maxBuffer: 64 * 1024 * 1024 });
