import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import { bwrapInvocation, ENVIRONMENT_FD } from "./bwrap-args";
import { ownerSuffix, SandboxCgroup } from "./cgroup";
import { restrictEgress } from "./egress";
import { attachNetwork } from "./network";
import { createOverlayWork, removeOverlayWork } from "./overlay";
import { hostCommand } from "./support";
import { childrenOf, exitOf, readAll } from "./process-io";
import type { SandboxCommand, SandboxedProcess, SandboxMode, SandboxSpec } from "./types";

export type { SandboxCommand, SandboxExit, SandboxedProcess, SandboxMode, SandboxSpec } from "./types";

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
  const overlayWork = spec.overlay ? createOverlayWork(spec.overlay.scratch) : undefined;
  const { args, env, environment } = bwrapInvocation(run, spec, overlayWork);
  // An instance's sandbox starts inside the network namespace its agent made for it (nsenter
  // execs bwrap: the pid stays the sandbox's).
  const [command, commandArgs] = typeof spec.network === "object" ? [hostCommand("nsenter"), [`--net=${spec.network.namespace}`, "--", hostCommand("bwrap"), ...args]] : [hostCommand("bwrap"), args];
  const child = spawn(command, commandArgs, { cwd: "/", env, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe"], detached: true });
  const info = child.stdio[3] as Readable;
  const block = child.stdio[4] as import("node:stream").Writable;
  const environmentPipe = (child.stdio as unknown as import("node:stream").Writable[])[ENVIRONMENT_FD]!;
  // Socket pairs their readers close when done with them (or never read, when bwrap fails first): a reset is not an error.
  for (const stream of [info, block, environmentPipe]) stream.on("error", () => undefined);
  environmentPipe.end(environment);
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
    resources.cgroup = await SandboxCgroup.create(`${spec.name}-${child.pid}${ownerSuffix()}`, spec.limits).catch(() => undefined);
    // Once a group exists the sandbox never runs outside it: a failed move ends the sandbox.
    if (resources.cgroup) for (const pid of [child.pid!, initPid]) await resources.cgroup.add(pid);
    if (spec.network === "isolated") {
      resources.network = await attachNetwork(initPid);
      await restrictEgress({ pid: initPid }, spec.egress ?? []);
    }
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
    if (overlayWork) await removeOverlayWork(overlayWork).catch(() => undefined);
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

const mib = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MiB`;
