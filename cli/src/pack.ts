import { readFile } from "node:fs/promises";
import path from "node:path";
import ignore from "ignore";
import { create } from "tar";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";

/** Never uploaded, whatever the ignore files say: VCS data and installed dependencies. */
const ALWAYS_IGNORED = [".git/", "antenv/", "node_modules/", ".slipway/"];

/**
 * Packs `dir` into a tar.gz for upload, honouring the root `.gitignore` and `.slipwayignore`.
 * Answers the number of files packed.
 */
export async function packSource(dir: string, file: string): Promise<{ files: number }> {
  const rules = ignore().add(ALWAYS_IGNORED);
  for (const name of [".gitignore", ".slipwayignore"]) {
    const text = await readFile(path.join(dir, name), "utf8").catch(() => "");
    rules.add(text);
  }
  let files = 0;
  await pipeline(
    create(
      {
        cwd: dir,
        gzip: true,
        portable: true,
        filter: (entryPath, stat) => {
          const normalized = path.posix.normalize(entryPath);
          const relative = normalized === "." ? "" : normalized;
          if (!relative) return true;
          const isDir = "isDirectory" in stat && stat.isDirectory();
          const keep = !rules.ignores(isDir ? `${relative}/` : relative);
          if (keep && !isDir) files += 1;
          return keep;
        },
      },
      ["."],
    ),
    createWriteStream(file),
  );
  return { files };
}
