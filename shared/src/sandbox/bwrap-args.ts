import { lstatSync, readlinkSync } from "node:fs";
import path from "node:path";
import { overlayArgs } from "./overlay";
import { hostCommand } from "./support";
import { SYSTEM_ALIASES, SYSTEM_DIRS } from "./toolchains";
import type { SandboxCommand, SandboxSpec } from "./types";

/** The descriptor on which the command's environment reaches the sandbox (see bwrapInvocation). */
export const ENVIRONMENT_FD = 5;

/**
 * Reads the NUL-separated environment from ENVIRONMENT_FD, closes it, and execs the command with
 * exactly that environment. Run by bash as the sandbox's uid, after setpriv.
 */
const WITH_ENVIRONMENT = `mapfile -d '' -u ${ENVIRONMENT_FD} assignments && exec ${ENVIRONMENT_FD}<&- && exec "$0" -i -- "\${assignments[@]}" "$@"`;

/**
 * bwrap's arguments, the environment to start bwrap with, and the command's environment, which
 * the caller writes (NUL-separated) to the sandbox's ENVIRONMENT_FD. Whatever runs as root to set
 * the sandbox up (bwrap, prlimit, setpriv and, for an overlay, mount and umount) starts with an
 * empty environment: an app's `GLIBC_TUNABLES`, `LD_PRELOAD`, `LIBMOUNT_*`, `BASH_ENV`,
 * `NODE_OPTIONS` or locale (which may name a file to parse) would otherwise act in a root
 * process. The environment goes through a descriptor rather than the command line, which any host
 * user can read for as long as the sandbox lives: it holds the app's secrets. `overlayWork`: the
 * fresh work directory for `spec.overlay`, when there is one.
 */
export function bwrapInvocation(run: SandboxCommand, spec: SandboxSpec, overlayWork?: string): { args: string[]; env: Record<string, string>; environment: string } {
  const environment = Object.entries(run.env)
    .map(([name, value]) => `${name}=${value}\0`)
    .join("");
  return { args: bwrapArgs(run, spec, overlayWork), env: {}, environment };
}

function bwrapArgs(run: SandboxCommand, spec: SandboxSpec, overlayWork?: string): string[] {
  const args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox"];
  if (spec.network === "isolated") args.push("--unshare-net");
  for (const dir of SYSTEM_DIRS) args.push("--ro-bind", dir, dir);
  for (const alias of SYSTEM_ALIASES) {
    const link = symlinkTarget(alias);
    if (link) args.push("--symlink", link, alias);
    else if (link === null) args.push("--ro-bind", alias, alias);
  }
  if (spec.resolvConf) args.push("--ro-bind", spec.resolvConf, "/etc/resolv.conf");
  // The private /tmp is the sandbox's to write (sticky, like any /tmp): yarn run, os.tmpdir(), uploads.
  // Its pages are charged to the sandbox's memory cgroup.
  args.push("--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir", "/var/tmp");
  // bwrap would create missing parents with the host's modes (/root is 0700): the sandbox's uid
  // could then not reach a toolchain bound below them.
  const mountpoints = spec.overlay ? [spec.overlay.upper] : [];
  for (const dir of ancestors([...spec.readOnly, ...spec.writable, ...mountpoints])) args.push("--perms", "0755", "--dir", dir);
  for (const dir of spec.readOnly) args.push("--ro-bind", dir, dir);
  for (const dir of spec.writable) args.push("--bind", dir, dir);
  const links = spec.links ?? [];
  for (const dir of ancestors(links.map((link) => link.path))) args.push("--perms", "0755", "--dir", dir);
  for (const link of links) args.push("--symlink", link.target, link.path);
  const id = String(spec.uid);
  const command = [
    hostCommand("prlimit"),
    `--fsize=${spec.limits.maxFileBytes}`,
    `--nproc=${spec.limits.maxProcesses}`,
    "--core=0",
    "--",
    hostCommand("setpriv"),
    `--reuid=${id}`,
    `--regid=${id}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
    hostCommand("bash"),
    "-c",
    WITH_ENVIRONMENT,
    hostCommand("env"),
    run.command,
    ...run.args,
  ];
  if (spec.overlay) {
    if (!overlayWork) throw new Error("an overlay needs its work directory");
    for (const dir of mountpoints) args.push("--dir", dir);
    const overlay = overlayArgs(spec.overlay, overlayWork, run, command);
    // The working directory exists only once the overlay is mounted: the mount step changes to it.
    args.push(...overlay.binds, "--chdir", "/", "--info-fd", "3", "--block-fd", "4", "--", ...overlay.command);
  } else {
    args.push("--chdir", run.cwd, "--info-fd", "3", "--block-fd", "4", "--", ...command);
  }
  return args;
}

function ancestors(dirs: string[]): string[] {
  const made = new Set<string>(["/", "/tmp", ...SYSTEM_DIRS]);
  const result: string[] = [];
  for (const dir of dirs) {
    const parts = path.resolve(dir).split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const ancestor = `/${parts.slice(0, i).join("/")}`;
      if (made.has(ancestor) || SYSTEM_DIRS.some((system) => ancestor.startsWith(`${system}/`))) continue;
      made.add(ancestor);
      result.push(ancestor);
    }
  }
  return result;
}

/** A symlink's target; `null` for a real directory; undefined when the path does not exist. */
function symlinkTarget(file: string): string | null | undefined {
  try {
    return lstatSync(file).isSymbolicLink() ? readlinkSync(file) : null;
  } catch {
    return undefined;
  }
}
