import { spawnSync } from "node:child_process";

/** How an artifact (or cache layer) is compressed; the file name says which (`OutputFileName`). */
export type Compression = "gzip" | "zstd";

export const ARCHIVE_EXTENSIONS: Record<Compression, string> = { gzip: ".tar.gz", zstd: ".tar.zst" };

/** `output.tar.zst` → zstd; `.tar.gz` / `.tgz` → gzip; anything else is not an archive we read. */
export function compressionOf(fileName: string): Compression | undefined {
  if (fileName.endsWith(".tar.zst") || fileName.endsWith(".tzst")) return "zstd";
  if (fileName.endsWith(".tar.gz") || fileName.endsWith(".tgz")) return "gzip";
  return undefined;
}

let zstdAvailable: boolean | undefined;

/** zstd runs through the `zstd` command (Node 20's zlib has no zstd). */
export function hasZstd(): boolean {
  zstdAvailable ??= spawnSync("zstd", ["--version"], { stdio: "ignore" }).status === 0;
  return zstdAvailable;
}

export const ZSTD_MISSING = "zstd compression needs the zstd command (Debian: apt-get install zstd)";
