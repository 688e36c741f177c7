import { readdir, readFile, stat } from "node:fs/promises";
import { groupOwner, SandboxCgroup, sandboxCgroupParents } from "./cgroup";

/**
 * What a service killed outright (SIGKILL, an OOM kill, a host's watchdog) leaves of its sandboxes:
 * the sandboxes themselves die with it (bwrap --die-with-parent), but not the slirp4netns that
 * served a build's network, nor the sandbox's cgroups. Each belongs to a sandbox whose bwrap (or
 * init) pid it names; whatever names a pid that no longer runs is a leftover. Another service's
 * sandboxes on the same host name live pids, and are left alone.
 */
export async function reapSandboxLeftovers(): Promise<{ networks: number; cgroups: number }> {
  const [networks, cgroups] = await Promise.all([reapNetworks(), reapCgroups()]);
  return { networks, cgroups };
}

/** slirp4netns processes whose sandbox (the pid they attached to) is gone: killed. */
async function reapNetworks(): Promise<number> {
  let reaped = 0;
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean);
    if (!argv[0]?.endsWith("slirp4netns") || !argv.includes("--ready-fd=3")) continue;
    // `slirp4netns [options] <pid> <tap>`: the sandbox's init it served; with --netns-type=path,
    // the namespace an instance's host agent bound (and removes when done with it).
    const path = argv.includes("--netns-type=path") ? argv.at(-2) : undefined;
    const target = Number(argv.at(-2));
    if (path ? await exists(path) : !Number.isInteger(target) || running(target)) continue;
    try {
      process.kill(Number(entry), "SIGKILL");
      reaped += 1;
    } catch {
      // Gone meanwhile.
    }
  }
  return reaped;
}

/** Slipway's sandbox cgroups whose owner (the service that made them, ownerSuffix) no longer runs: emptied and removed. */
async function reapCgroups(): Promise<number> {
  const names = new Set<string>();
  for (const parent of await sandboxCgroupParents()) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const owner = groupOwner(name);
      if (owner && !running(owner)) names.add(name.slice("slipway-".length));
    }
  }
  for (const name of names) await (await SandboxCgroup.existing(name)).destroy(0);
  return names.size;
}

const exists = (file: string) => stat(file).then(() => true, () => false);

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
