import { createWriteStream } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import ignore, { type Ignore } from "ignore";
import { create } from "tar";
import { listResources, RESOURCE_MANIFEST, type ResourceEntry } from "@slipway/shared/light";

/** Never uploaded, whatever the ignore files say: VCS data and installed dependencies. */
const ALWAYS_IGNORED = [".git/", "antenv/", "node_modules/", ".slipway/"];

async function ignoreRules(dir: string): Promise<Ignore> {
  const rules = ignore().add(ALWAYS_IGNORED);
  for (const name of [".gitignore", ".slipwayignore"]) rules.add(await readFile(path.join(dir, name), "utf8").catch(() => ""));
  return rules;
}

/** The files a deploy of `dir` sends (ignore files honoured), each with its sha256. */
export async function scanSource(dir: string): Promise<ResourceEntry[]> {
  const rules = await ignoreRules(dir);
  return listResources(dir, (relative, isDir) => !rules.ignores(isDir ? `${relative}/` : relative));
}

async function tarGz(cwd: string, file: string, filter?: (relative: string, isDir: boolean) => boolean): Promise<void> {
  await pipeline(
    create(
      {
        cwd,
        gzip: true,
        portable: true,
        filter: (entryPath, stat) => {
          const normalized = path.posix.normalize(entryPath);
          if (!filter || normalized === ".") return true;
          return filter(normalized, "isDirectory" in stat && stat.isDirectory());
        },
      },
      ["."],
    ),
    createWriteStream(file),
  );
}

/**
 * Packs `dir` for upload, honouring the root `.gitignore` and `.slipwayignore`. With `held` (the
 * digests the server already has), only the other files go in, plus `.slipway-resources.json`
 * naming the held ones, from which the server assembles the full source.
 */
export async function packSource(dir: string, file: string, held?: { entries: ResourceEntry[]; digests: Set<string> }): Promise<{ files: number; sent: number; matched: number }> {
  if (!held || held.digests.size === 0) {
    const rules = await ignoreRules(dir);
    let files = 0;
    await tarGz(dir, file, (relative, isDir) => {
      const keep = !rules.ignores(isDir ? `${relative}/` : relative);
      if (keep && !isDir) files += 1;
      return keep;
    });
    return { files, sent: files, matched: 0 };
  }
  const staging = await mkdtemp(path.join(os.tmpdir(), "slipway-stage-"));
  try {
    const matched: ResourceEntry[] = [];
    let sent = 0;
    for (const entry of held.entries) {
      if (held.digests.has(entry.sha256)) {
        matched.push(entry);
        continue;
      }
      const target = path.join(staging, entry.path);
      await mkdir(path.dirname(target), { recursive: true });
      await copyFile(path.join(dir, entry.path), target);
      await chmod(target, entry.mode);
      sent += 1;
    }
    await writeFile(path.join(staging, RESOURCE_MANIFEST), JSON.stringify(matched));
    await tarGz(staging, file);
    return { files: held.entries.length, sent, matched: matched.length };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
