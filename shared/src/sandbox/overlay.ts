import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { hostCommand } from "./support";
import type { SandboxCommand, SandboxSpec } from "./types";

/**
 * A release directory served as an overlay, mounted inside the sandbox by the sandbox's own first
 * step, so no mount ever exists on the host: nothing to leak when an agent is killed, nothing for
 * `rm -rf` of a runtime root to trip on. bwrap (0.8) cannot mount an overlay itself; it binds the
 * layers at a staging path under its private /run and keeps CAP_SYS_ADMIN for a `sh` that mounts
 * the overlay, detaches the staging binds and only then execs the command chain, whose `setpriv`
 * drops every capability before the app's first instruction.
 */
const STAGE = "/run/slipway-overlay";
const STAGED_LOWER = `${STAGE}/lower`;
/** A directory holding both the upper and the work directory, which overlay needs on one mount. */
const STAGED_ROOT = `${STAGE}/root`;
/** Overlay's mount options are comma- and colon-separated: the paths passed through stay plain. */
const PLAIN_PATH = /^[A-Za-z0-9._/-]+$/;

/** Runs as root with CAP_SYS_ADMIN: every command by absolute path, none looked up on the app's PATH. */
const mountScript = () =>
  [
    "set -e",
    `${hostCommand("mount")} -n -t overlay slipway -o "lowerdir=${STAGED_LOWER},upperdir=${STAGED_ROOT}/$1,workdir=${STAGED_ROOT}/$2" "$3"`,
    `${hostCommand("umount")} -n -l ${STAGED_LOWER} ${STAGED_ROOT}`,
    'cd "$4"',
    "shift 4",
    'exec "$@"',
  ].join("\n");

/** The work directory overlay needs, fresh for each sandbox, in `scratch` (on the upper's filesystem). */
export function createOverlayWork(scratch: string): string {
  mkdirSync(scratch, { recursive: true, mode: 0o700 });
  const work = path.join(scratch, `work-${randomUUID().slice(0, 8)}`);
  mkdirSync(work, { mode: 0o700 });
  return work;
}

export async function removeOverlayWork(work: string): Promise<void> {
  await rm(work, { recursive: true, force: true });
}

/**
 * What bwrap needs for `overlay`: binds (after /run exists inside) and the command to run in place
 * of `command`, which mounts the overlay at `upper`'s path, changes to `run.cwd` and execs it.
 */
export function overlayArgs(overlay: NonNullable<SandboxSpec["overlay"]>, work: string, run: SandboxCommand, command: string[]): { binds: string[]; command: string[] } {
  const root = commonDirectory(overlay.upper, work);
  const [upper, workName] = [path.relative(root, overlay.upper), path.relative(root, work)];
  for (const name of [upper, workName]) {
    if (!name || name.startsWith("..") || !PLAIN_PATH.test(name)) throw new Error(`overlay layer path "${name}" must be below ${root} and plain (letters, digits, '.', '_', '-', '/')`);
  }
  return {
    binds: ["--dir", STAGE, "--ro-bind", overlay.lower, STAGED_LOWER, "--bind", root, STAGED_ROOT, "--cap-add", "CAP_SYS_ADMIN"],
    command: [hostCommand("sh"), "-c", mountScript(), "slipway-overlay", upper, workName, overlay.upper, run.cwd, ...command],
  };
}

function commonDirectory(a: string, b: string): string {
  const [left, right] = [path.resolve(a).split(path.sep), path.resolve(b).split(path.sep)];
  let shared = 0;
  while (shared < left.length && left[shared] === right[shared]) shared++;
  return left.slice(0, shared).join(path.sep) || path.sep;
}
