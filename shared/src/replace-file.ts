import { randomUUID } from "node:crypto";
import { chmod, lchown, lstat, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Gives `file` new contents on a new inode (write beside it, then rename over it), never by
 * writing into the inode it has: a release directory's files can be hard links shared with other
 * instances and the host cache, and an edit in place would change every one of them. A file that
 * existed keeps its mode and, when the caller may set it, its owner.
 */
export async function replaceFile(file: string, contents: string | Buffer, mode = 0o644): Promise<void> {
  const before = await lstat(file).catch(() => undefined);
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID().slice(0, 8)}.tmp`);
  try {
    await writeFile(temporary, contents, { flag: "wx" });
    // writeFile's mode is cut by the umask: set it exactly.
    await chmod(temporary, before ? before.mode & 0o7777 : mode);
    if (before) await lchown(temporary, before.uid, before.gid).catch(() => undefined);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
