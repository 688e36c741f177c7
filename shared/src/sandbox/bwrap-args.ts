import { lstatSync, readlinkSync } from "node:fs";
import path from "node:path";
import { overlayArgs } from "./overlay";
import { hostCommand } from "./support";
import { SYSTEM_ALIASES, SYSTEM_DIRS } from "./toolchains";
import type { SandboxCommand, SandboxSpec } from "./types";

/**
 * What the dynamic loader and libc act on in any process started with them (glibc's list of what
 * it drops for set-uid programs, and the locale, which may name a file to parse): `LD_PRELOAD=<a
 * file the app wrote>` in bwrap's environment would run the app's code as root on the host. bwrap
 * and the sandbox's root-run steps (prlimit, setpriv, the overlay mount) start without them; the
 * command gets them back from `env`, which runs as the sandbox's uid.
 */
const LOADER_VARIABLES = /^(LD_.*|GCONV_PATH|GETCONF_DIR|HOSTALIASES|LOCALDOMAIN|LOCPATH|MALLOC_.*|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|TMPDIR|TZDIR|LANG|LANGUAGE|LC_.*)$/;

/**
 * bwrap's arguments and the environment to start it with. Every root-run step is named by its
 * absolute path on the service's own PATH, never looked up on the command's (the app's venv).
 * `overlayWork`: the fresh work directory for `spec.overlay`, when there is one.
 */
export function bwrapInvocation(run: SandboxCommand, spec: SandboxSpec, overlayWork?: string): { args: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {};
  const deferred: string[] = [];
  for (const [name, value] of Object.entries(run.env)) {
    if (LOADER_VARIABLES.test(name)) deferred.push(`${name}=${value}`);
    else env[name] = value;
  }
  return { args: bwrapArgs(run, spec, deferred, overlayWork), env };
}

function bwrapArgs(run: SandboxCommand, spec: SandboxSpec, deferred: string[], overlayWork?: string): string[] {
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
    ...(deferred.length ? [hostCommand("env"), ...deferred] : []),
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
