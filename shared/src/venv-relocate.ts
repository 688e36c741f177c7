import { chmod, lstat, mkdir, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { replaceFile } from "./replace-file";

/** Linux reads at most this much of a `#!` line on older kernels; longer interpreters need a trampoline. */
const MAX_SHEBANG = 127;

/**
 * A directory itself, not a link to one: the venv is the build's work, and a link in it could send
 * root's rewrite to any directory of the host.
 */
const realDirectory = (dir: string) => lstat(dir).then((info) => info.isDirectory(), () => false);

/** The entries of `dir` when it is a real directory; none when it is a link or missing. */
const entriesOf = async (dir: string) => ((await realDirectory(dir)) ? readdir(dir).catch(() => [] as string[]) : []);

/**
 * Where the venv was built, read from its `bin/activate` (`VIRTUAL_ENV="..."`): the fallback when
 * a manifest does not say where the build ran.
 */
export async function builtVenvPath(venvDir: string): Promise<string | undefined> {
  const activate = await readFile(path.join(venvDir, "bin", "activate"), "utf8").catch(() => "");
  const match = /^\s*VIRTUAL_ENV=["']?([^"'\n]+)["']?\s*$/m.exec(activate);
  return match?.[1];
}

/**
 * A virtualenv hard-codes the absolute path it was created at: console-script shebangs,
 * `activate*`, `pyvenv.cfg`, `.pth` files of editable installs. After a restore at a different
 * path, rewrite every occurrence of the old venv path to the new one so console scripts run and
 * `activate` points at the new place. Each rewritten file is replaced, not edited in place, so a
 * hard link to it elsewhere keeps the old contents. `writeDir` takes the rewritten files instead
 * of `venvDir`, at the same relative paths, its missing directories made with `venvDir`'s modes:
 * an overlay's upper directory, over a `venvDir` that stays as it is. Answers how many files were
 * rewritten.
 */
export async function relocateVenv(venvDir: string, fromVenvPath: string, toVenvPath: string = venvDir, writeDir: string = venvDir): Promise<number> {
  if (fromVenvPath === toVenvPath || !(await realDirectory(venvDir))) return 0;
  const candidates: string[] = [];
  const bin = path.join(venvDir, "bin");
  for (const name of await entriesOf(bin)) candidates.push(path.join(bin, name));
  candidates.push(path.join(venvDir, "pyvenv.cfg"));
  for (const libDir of await entriesOf(path.join(venvDir, "lib"))) {
    if (!(await realDirectory(path.join(venvDir, "lib", libDir)))) continue;
    const sitePackages = path.join(venvDir, "lib", libDir, "site-packages");
    for (const name of await entriesOf(sitePackages)) {
      if (name.endsWith(".pth")) candidates.push(path.join(sitePackages, name));
    }
  }

  // All at once: each is a few small reads and writes, and a restore waits for the last.
  const rewritten = await Promise.all(candidates.map((file) => relocateFile(file, venvDir, fromVenvPath, toVenvPath, writeDir)));
  return rewritten.filter(Boolean).length;
}

/** Rewrites one file of the venv for its new path, when it names the old one; answers whether it did. */
async function relocateFile(file: string, venvDir: string, fromVenvPath: string, toVenvPath: string, writeDir: string): Promise<boolean> {
  const info = await lstat(file).catch(() => undefined);
  // Symlinks (bin/python -> the interpreter) are left alone; so is anything large or binary.
  if (!info?.isFile() || info.size > 1024 * 1024) return false;
  const buffer = await readFile(file);
  if (buffer.includes(0)) return false;
  const text = buffer.toString("utf8");
  if (!text.includes(fromVenvPath)) return false;
  let updated = text.split(fromVenvPath).join(toVenvPath);
  if (updated.startsWith("#!")) updated = fitShebang(updated);
  const relative = path.relative(venvDir, file);
  if (writeDir !== venvDir) await mirrorDirectories(venvDir, writeDir, path.dirname(relative));
  await replaceFile(path.join(writeDir, relative), updated, info.mode & 0o7777);
  return true;
}

/** Makes `relativeDir` and its parents in `to` where missing, each with the mode it has in `from`. */
async function mirrorDirectories(from: string, to: string, relativeDir: string): Promise<void> {
  let walked = "";
  for (const part of ["", ...relativeDir.split(path.sep).filter((p) => p && p !== ".")]) {
    walked = path.join(walked, part);
    const made = await mkdir(path.join(to, walked)).then(() => true, (error: NodeJS.ErrnoException) => (error.code === "EEXIST" ? false : Promise.reject(error)));
    if (made) await chmod(path.join(to, walked), (await stat(path.join(from, walked))).mode & 0o7777);
  }
}

/** Rewrites an over-long `#!/path/python` line into pip's own `/bin/sh` trampoline. */
function fitShebang(script: string): string {
  const newline = script.indexOf("\n");
  const first = newline === -1 ? script : script.slice(0, newline);
  if (first.length <= MAX_SHEBANG || first.startsWith("#!/bin/sh")) return script;
  const interpreter = first.slice(2).trim();
  const rest = newline === -1 ? "" : script.slice(newline + 1);
  return `#!/bin/sh\n'''exec' "${interpreter}" "$0" "$@"\n' '''\n${rest}`;
}
