import { access, lstat, readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { readUntrustedText } from "@slipway/shared";
import { BuildFailure } from "../errors";

/** Whether anything is at `file` (links followed). */
export const exists = (file: string) => access(file).then(() => true, () => false);

/** Whether `file` is a regular file itself, not a link to one. */
export const isFile = (file: string) => lstat(file).then((info) => info.isFile(), () => false);

/**
 * A text file of the app (`name` relative to `sourceDir`), undefined when there is none. A link
 * is followed while it stays inside the app, as Heroku does (a `requirements.txt` linked to
 * `requirements/prod.txt`); one that leaves it, or leads nowhere, fails the build saying so.
 */
export async function readAppText(sourceDir: string, name: string): Promise<string | undefined> {
  const file = path.join(sourceDir, name);
  const info = await lstat(file).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isSymbolicLink()) return readUntrustedText(file);
  const link = await readlink(file);
  const [root, target] = await Promise.all([realpath(sourceDir), realpath(file).catch(() => undefined)]);
  if (!target) throw new BuildFailure(`${name} is a link to ${link}, which does not exist in the app`);
  if (!target.startsWith(`${root}${path.sep}`)) throw new BuildFailure(`${name} is a link to ${link}, outside the app: only files inside it are read; copy the file into the app`);
  return readUntrustedText(target);
}
