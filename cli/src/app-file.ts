import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse, stringify } from "smol-toml";
import { CliError } from "./client";

export const APP_FILE = "slipway.toml";

/**
 * Where the app file for `cwd` is: `cwd` itself, then its parents up to the git root (the
 * directory holding `.git`), so commands work from a project's subdirectories as git's do.
 * Outside a git repository only `cwd` counts: a stray file in a home directory must not decide
 * which app a command touches.
 */
export function findAppFile(cwd: string): string | undefined {
  let dir = path.resolve(cwd);
  const insideGit = ancestors(dir).some((d) => existsSync(path.join(d, ".git")));
  for (;;) {
    const candidate = path.join(dir, APP_FILE);
    if (existsSync(candidate)) return candidate;
    if (!insideGit || existsSync(path.join(dir, ".git"))) return undefined;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function ancestors(dir: string): string[] {
  const all = [dir];
  while (path.dirname(all.at(-1)!) !== all.at(-1)) all.push(path.dirname(all.at(-1)!));
  return all;
}

/** The app named by the app file found from `cwd`, if any. */
export async function readAppFile(cwd: string): Promise<{ app: string; file: string } | undefined> {
  const file = findAppFile(cwd);
  if (!file) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new CliError(`${file} is not valid TOML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (typeof parsed.app !== "string" || parsed.app === "") throw new CliError(`${file} has no app = "NAME" line`);
  return { app: parsed.app, file };
}

/** Writes `slipway.toml` naming `app` into `dir`; answers its path. */
export async function writeAppFile(dir: string, app: string): Promise<string> {
  const file = path.join(dir, APP_FILE);
  // stringify ends its output with a newline already.
  await writeFile(file, stringify({ app }));
  return file;
}

/** The app a command acts on: `--app`, else the app file's; an error saying how to name one otherwise. */
export async function resolveApp(option: string | undefined, cwd = process.cwd()): Promise<string> {
  if (option) return option;
  const found = await readAppFile(cwd);
  if (found) return found.app;
  throw new CliError(`no app given: pass --app NAME, or run \`slipway apps create NAME\` to write ${APP_FILE} here`);
}
