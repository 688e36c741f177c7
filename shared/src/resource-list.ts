import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import type { ResourceEntry } from "./contracts/resources";

/** The manifest a partial upload carries for the files it left out because the server has them. */
export const RESOURCE_MANIFEST = ".slipway-resources.json";

export type { ResourceEntry };

export async function hashFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Every regular file under `dir` (relative POSIX paths), with its digest, size and mode. */
export async function listResources(dir: string, keep: (relative: string, isDir: boolean) => boolean = () => true): Promise<ResourceEntry[]> {
  const entries: ResourceEntry[] = [];
  const walk = async (relative: string) => {
    for (const name of await readdir(path.join(dir, relative))) {
      const child = relative ? `${relative}/${name}` : name;
      const info = await lstat(path.join(dir, child));
      if (!keep(child, info.isDirectory())) continue;
      if (info.isDirectory()) await walk(child);
      else if (info.isFile()) entries.push({ path: child, sha256: await hashFile(path.join(dir, child)), size: info.size, mode: info.mode & 0o777 });
    }
  };
  await walk("");
  return entries;
}
