import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

const CGROUP_ROOT = "/sys/fs/cgroup";

export interface CgroupLimits {
  memoryBytes: number;
  maxProcesses: number;
}

export interface CgroupReport {
  /** The kernel's OOM killer fired inside the group. */
  oomKilled: boolean;
  /** A fork was refused because the group was at its process limit. */
  processLimitHit: boolean;
}

/**
 * One sandbox's cgroup (v1: these machines mount memory and pids as separate hierarchies), nested
 * under the cgroup this process already runs in so a container's own limits still apply above it.
 * Membership is inherited by every fork, so it is also how the caller proves, after the sandbox's
 * first process exits, that nothing it started is still alive.
 */
export class SandboxCgroup {
  private constructor(private readonly dirs: { memory: string; pids: string }) {}

  static async create(name: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    const dirs = { memory: await groupDir("memory", name), pids: await groupDir("pids", name) };
    await Promise.all([mkdir(dirs.memory, { recursive: true }), mkdir(dirs.pids, { recursive: true })]);
    await writeFile(path.join(dirs.memory, "memory.limit_in_bytes"), String(limits.memoryBytes));
    // With swap accounting, memory+swap gets the same bound, or a hog would swap instead of failing.
    await writeFile(path.join(dirs.memory, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes)).catch(() => undefined);
    await writeFile(path.join(dirs.pids, "pids.max"), String(limits.maxProcesses));
    return new SandboxCgroup(dirs);
  }

  /** The group `name` as an earlier process made it: to empty and remove what it left. */
  static async existing(name: string): Promise<SandboxCgroup> {
    return new SandboxCgroup({ memory: await groupDir("memory", name), pids: await groupDir("pids", name) });
  }

  async add(pid: number): Promise<void> {
    await writeFile(path.join(this.dirs.memory, "cgroup.procs"), String(pid));
    await writeFile(path.join(this.dirs.pids, "cgroup.procs"), String(pid));
  }

  /** Host pids of every process still in the group. */
  async members(): Promise<number[]> {
    const text = await readFile(path.join(this.dirs.pids, "cgroup.procs"), "utf8").catch(() => "");
    return text.split("\n").filter(Boolean).map(Number);
  }

  async report(): Promise<CgroupReport> {
    const [oom, events] = await Promise.all([
      readFile(path.join(this.dirs.memory, "memory.oom_control"), "utf8").catch(() => ""),
      readFile(path.join(this.dirs.pids, "pids.events"), "utf8").catch(() => ""),
    ]);
    return { oomKilled: counter(oom, "oom_kill") > 0, processLimitHit: counter(events, "max") > 0 };
  }

  /**
   * Kills whatever is left and removes the group; answers how many processes had to be killed.
   * What ends by itself within `settleMs` was not left running: bwrap reports its command's exit
   * at once, while the sandbox's init (bwrap's reaper, pid 1 of its namespace) is still on its
   * way out, which on a loaded host can take a while.
   */
  async destroy(settleMs = SETTLE_MS): Promise<number> {
    const settleUntil = Date.now() + settleMs;
    while ((await this.members()).length > 0 && Date.now() < settleUntil) await new Promise((resolve) => setTimeout(resolve, 10));
    let killed = 0;
    for (let round = 0; round < 50; round++) {
      const pids = await this.members();
      if (pids.length === 0) break;
      if (round === 0) killed = pids.length;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await Promise.all([rmdir(this.dirs.memory).catch(() => undefined), rmdir(this.dirs.pids).catch(() => undefined)]);
    return killed;
  }
}

/**
 * Ends the name of every group this process makes: `-o<its pid>`. A group whose owner no longer
 * runs was left by a service killed outright (see reapSandboxLeftovers); a live owner's groups,
 * its sandboxes' that just ended included, are its own to report on and remove.
 */
export const ownerSuffix = (pid = process.pid): string => `-o${pid}`;

/** The owner's pid a group's name ends with (ownerSuffix), when it has one. */
export const groupOwner = (name: string): number | undefined => {
  const match = /^slipway-.+-o(\d+)$/.exec(name);
  return match ? Number(match[1]) : undefined;
};

/** How long a sandbox's processes get to end by themselves once its command has exited. */
const SETTLE_MS = 500;

/** Whether this process may create cgroups for its sandboxes. */
export async function cgroupsUsable(): Promise<boolean> {
  try {
    const probe = await SandboxCgroup.create(`probe${ownerSuffix()}`, { memoryBytes: 64 * 1024 * 1024, maxProcesses: 8 });
    await probe.destroy(0);
    return true;
  } catch {
    return false;
  }
}

async function groupDir(controller: "memory" | "pids", name: string): Promise<string> {
  return path.join(await parentDir(controller), `slipway-${name}`);
}

/** Where this process makes its sandboxes' groups: below its own group of each controller. */
async function parentDir(controller: "memory" | "pids"): Promise<string> {
  const own = await readFile("/proc/self/cgroup", "utf8");
  const line = own.split("\n").find((entry) => entry.split(":")[1]?.split(",").includes(controller));
  const parent = line ? line.split(":").slice(2).join(":") : "/";
  return path.join(CGROUP_ROOT, controller, parent);
}

/** The directories holding this process's sandbox groups, one per controller. */
export function sandboxCgroupParents(): Promise<string[]> {
  return Promise.all([parentDir("memory"), parentDir("pids")]);
}

function counter(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}
