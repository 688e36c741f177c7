import { execFile, spawn, type ChildProcessByStdio } from "node:child_process";
import type { Readable, Writable } from "node:stream";

/**
 * The environment every git process of the API's gets: the host's and the user's git config stay
 * out (a credential helper or hooksPath there must not apply to app repositories), and so do the
 * API's own settings (storage keys, the token), which git has no use for.
 */
export function gitEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    HOME: "/nonexistent",
    ...extra,
  };
}

/** Runs `git <args>` in `dir`; answers its stdout, or fails with its stderr. */
export function git(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("git", args, { cwd: dir, env: gitEnvironment(), maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`git ${args[0]}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** `git <args>` with its stdin and stdout as streams, for the commands that move whole packs or archives. */
export function spawnGit(dir: string, args: string[], env: Record<string, string> = {}): ChildProcessByStdio<Writable, Readable, Readable> {
  return spawn("git", args, { cwd: dir, env: gitEnvironment(env), stdio: ["pipe", "pipe", "pipe"] });
}
