import { spawn, type ChildProcess } from "node:child_process";
import { lstatSync, readFileSync, readlinkSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { SandboxCgroup, type CgroupLimits } from "./cgroup";
import { SYSTEM_ALIASES, SYSTEM_DIRS } from "./toolchains";

/** Where a sandbox stands; `off` runs commands as plain child processes (an operator's explicit choice). */
export type SandboxMode = "on" | "off";

export interface SandboxSpec {
  /** Names the sandbox's cgroup: a build id, an instance id. */
  name: string;
  /** The host uid (and gid) everything inside runs as: never the platform's own. */
  uid: number;
  /** Host paths bound read-write at the same path inside. */
  writable: string[];
  /** Host paths bound read-only at the same path inside (toolchains). */
  readOnly: string[];
  /**
   * `isolated`: a network namespace of its own behind user-mode networking with the host's
   * loopback unreachable (builds). `host`: the host's network (apps, which must listen where the
   * agent's proxy reaches them; the control plane then relies on credentials they cannot read).
   */
  network: "isolated" | "host";
  limits: CgroupLimits & { maxFileBytes: number };
  /** A file bound as /etc/resolv.conf (isolated network: the user-mode network's DNS). */
  resolvConf?: string;
}

export interface SandboxExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the sandbox failed, when a limit did it: "out of memory (limit 512 MiB)". */
  limitReason?: string;
  /** Processes still alive in the sandbox after its first process ended, killed by the caller's cleanup. */
  survivorsKilled: number;
}

export interface SandboxedProcess {
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles once the command and everything it started are gone. */
  readonly exited: Promise<SandboxExit>;
  /** Host pid of the outermost process (bwrap, or the command itself when the sandbox is off). */
  readonly pid: number | undefined;
  /** Asks the command to stop (its process group). */
  terminate(signal?: NodeJS.Signals): void;
  /** Ends the sandbox: every process in it dies, whatever it did to escape its process group. */
  kill(): void;
}

/** The user-mode network's DNS forwarder, as slirp4netns configures it. */
export const SLIRP_DNS = "10.0.2.3";

export interface SandboxCommand {
  command: string;
  args: string[];
  cwd: string;
  /** The whole environment inside: nothing of the caller's is inherited. */
  env: Record<string, string>;
}

/** Runs one command inside a sandbox (or, with mode `off`, as a plain process group). */
export function spawnSandboxed(run: SandboxCommand, spec: SandboxSpec, mode: SandboxMode): SandboxedProcess {
  return mode === "off" ? spawnPlain(run) : spawnInSandbox(run, spec);
}

function spawnPlain(run: SandboxCommand): SandboxedProcess {
  const child = spawn(run.command, run.args, { cwd: run.cwd, env: run.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // The group is gone.
    }
  };
  const exited = exitOf(child).then((exit) => {
    signalGroup("SIGKILL");
    return { ...exit, survivorsKilled: 0 };
  });
  return { stdout: child.stdout!, stderr: child.stderr!, exited, pid: child.pid, terminate: (signal = "SIGTERM") => signalGroup(signal), kill: () => signalGroup("SIGKILL") };
}

/**
 * bwrap runs as root only to set the sandbox up (mounts, namespaces); `setpriv` then drops to the
 * sandbox's own host uid with no capabilities and no way to regain any, so the command never holds
 * a privilege, inside or outside. bwrap's --unshare-user is not used: started by root it would map
 * the sandbox to host root. The command waits on --block-fd until the caller has put the sandbox
 * into its cgroup and attached its network, so not one instruction of it runs unlimited.
 */
function spawnInSandbox(run: SandboxCommand, spec: SandboxSpec): SandboxedProcess {
  const args = bwrapArgs(run, spec);
  const child = spawn("bwrap", args, { cwd: "/", env: run.env, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe"], detached: true });
  const info = child.stdio[3] as Readable;
  const block = child.stdio[4] as import("node:stream").Writable;
  // Both are socket pairs bwrap closes when it is done with them; a reset then is not an error.
  info.on("error", () => undefined);
  block.on("error", () => undefined);
  let initPid: number | undefined;
  let killed = false;
  const kill = () => {
    killed = true;
    // The sandbox's pid 1: when it dies the kernel kills every process of its pid namespace.
    for (const pid of [initPid, child.pid]) {
      try {
        if (pid) process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  };
  // Held outside setUp so that whatever of it was made is undone, even when setting up failed.
  const resources: { cgroup?: SandboxCgroup; network?: ChildProcess } = {};
  const setUp = (async () => {
    const infoText = await readAll(info);
    if (!infoText) return; // bwrap failed before starting the sandbox; its exit says why.
    initPid = (JSON.parse(infoText) as { "child-pid": number })["child-pid"];
    resources.cgroup = await SandboxCgroup.create(`${spec.name}-${child.pid}`, spec.limits).catch(() => undefined);
    // Once a group exists the sandbox never runs outside it: a failed move ends the sandbox.
    if (resources.cgroup) for (const pid of [child.pid!, initPid]) await resources.cgroup.add(pid);
    if (spec.network === "isolated") resources.network = await attachNetwork(initPid);
    if (killed) kill();
    block.end("go");
  })();
  setUp.catch(() => kill());
  const exited = Promise.all([exitOf(child), setUp.catch(() => undefined)]).then(async ([exit]) => {
    resources.network?.kill("SIGKILL");
    let limitReason: string | undefined;
    let survivorsKilled = 0;
    if (resources.cgroup) {
      const report = await resources.cgroup.report();
      if (report.oomKilled) limitReason = `out of memory (limit ${mib(spec.limits.memoryBytes)})`;
      else if (report.processLimitHit) limitReason = `too many processes (limit ${spec.limits.maxProcesses})`;
      survivorsKilled = await resources.cgroup.destroy();
    }
    return { ...exit, ...(limitReason ? { limitReason } : {}), survivorsKilled };
  });
  // The command leads a session of its own inside (--new-session), so it is signalled through the
  // sandbox's init, whose only child it is.
  const terminate = (signal: NodeJS.Signals = "SIGTERM") => {
    for (const pid of initPid ? childrenOf(initPid) : []) {
      try {
        process.kill(-pid, signal);
      } catch {
        try {
          process.kill(pid, signal);
        } catch {
          // Gone.
        }
      }
    }
  };
  return { stdout: child.stdout!, stderr: child.stderr!, exited, pid: child.pid, terminate, kill };
}

export function bwrapArgs(run: SandboxCommand, spec: SandboxSpec): string[] {
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
  for (const dir of ancestors([...spec.readOnly, ...spec.writable])) args.push("--perms", "0755", "--dir", dir);
  for (const dir of spec.readOnly) args.push("--ro-bind", dir, dir);
  for (const dir of spec.writable) args.push("--bind", dir, dir);
  args.push("--chdir", run.cwd, "--info-fd", "3", "--block-fd", "4");
  const id = String(spec.uid);
  args.push(
    "--",
    "prlimit",
    `--fsize=${spec.limits.maxFileBytes}`,
    `--nproc=${spec.limits.maxProcesses}`,
    "--core=0",
    "--",
    "setpriv",
    `--reuid=${id}`,
    `--regid=${id}`,
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
    run.command,
    ...run.args,
  );
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

/**
 * slirp4netns gives the sandbox's network namespace a tap device routed through the host's stack
 * in user space; --disable-host-loopback makes 10.0.2.2 (the host) refuse, so Redis, storage and
 * the API on the host's loopback are out of reach, while the package indexes are not.
 */
const NETWORK_ATTACH_TIMEOUT_MS = 30_000;

async function attachNetwork(pid: number): Promise<ChildProcess> {
  const slirp = spawn(
    "slirp4netns",
    ["--configure", "--mtu=65520", "--disable-host-loopback", "--enable-seccomp", "--ready-fd=3", String(pid), "tap0"],
    { stdio: ["ignore", "ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  slirp.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    firstChunk(slirp.stdio[3] as Readable).then((text) => text.startsWith("1")),
    exitOf(slirp).then(() => false),
    // The command is blocked until the network is up: a slirp4netns that never answers must not hold it forever.
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), NETWORK_ATTACH_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (!ready) {
    slirp.kill("SIGKILL");
    throw new Error(`slirp4netns could not attach the sandbox's network: ${stderr.trim().split("\n").pop() || "no answer"}`);
  }
  return slirp;
}

function firstChunk(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    stream.setEncoding("utf8");
    stream.once("data", (chunk: string) => resolve(chunk));
    stream.once("end", () => resolve(""));
    stream.once("error", () => resolve(""));
  });
}

function readAll(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => (text += chunk));
    stream.once("end", () => resolve(text));
    stream.once("close", () => resolve(text));
    stream.once("error", () => resolve(text));
  });
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;

/** A resolv.conf naming the user-mode network's DNS, written into `dir` (same content for every worker). */
export async function writeSandboxResolvConf(dir: string): Promise<string> {
  const file = path.join(dir, "slipway-sandbox-resolv.conf");
  await writeFile(file, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
  return file;
}
