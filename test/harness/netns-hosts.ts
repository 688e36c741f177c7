import { execFile, execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";

/**
 * Hosts for multi-host tests, on this machine: a Linux bridge and one network namespace per host,
 * each with its own address on the bridge (the bridge's own address is this machine's, where the
 * test process and whatever it starts outside the namespaces listen). A partition is iptables
 * rules inside a host's namespace. Everything is named after the creating process, so a sweep
 * removes what a killed test run left behind, and `destroy()` removes every namespace, link and
 * rule, whatever happened before it.
 */
export interface NetnsHost {
  name: string;
  /** The namespace's name, for `ip netns exec`. */
  netns: string;
  /** Its address on the bridge. */
  address: string;
}

export interface HostNetwork {
  /** This machine's address on the bridge: what the hosts reach the test's own servers at. */
  gateway: string;
  hosts: NetnsHost[];
  /** Runs `command` inside `host`'s namespace and answers its stdout. */
  run(host: NetnsHost, command: string, args: string[]): Promise<string>;
  /** Cuts `host` off from every other address (its own loopback stays). */
  partition(host: NetnsHost): Promise<void>;
  heal(host: NetnsHost): Promise<void>;
  /** Removes every namespace, link and rule this network made. */
  destroy(): Promise<void>;
}

/** What names this process's namespaces and links: `sw<pid in base 36>_`, short enough for a link name. */
const tagOf = (pid: number) => `sw${pid.toString(36)}_`;
const ownerOf = (name: string): number | undefined => {
  const match = /^sw([0-9a-z]+)_/.exec(name);
  return match ? parseInt(match[1]!, 36) : undefined;
};

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Namespaces and bridges a test run made (`sw<pid>…`) whose process no longer runs. */
export function sweepStaleHostNetworks(): string[] {
  const removed: string[] = [];
  const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((line) => line.split(" ")[0]!).filter(Boolean);
  const links = execFileSync("ip", ["-o", "link", "show", "type", "bridge"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(": ")[1]?.split("@")[0])
    .filter((name): name is string => !!name);
  for (const name of [...namespaces, ...links]) {
    const pid = ownerOf(name);
    if (pid === undefined || processExists(pid)) continue;
    try {
      ip(namespaces.includes(name) ? ["netns", "del", name] : ["link", "del", name]);
      removed.push(name);
    } catch {
      // Removed meanwhile.
    }
  }
  return removed;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

let networks = 0;

/** A bridge and one namespace per name in `names`, addressed on a /24 of their own. */
export async function createHostNetwork(names: string[]): Promise<HostNetwork> {
  sweepStaleHostNetworks();
  const tag = `${tagOf(process.pid)}${(networks++).toString(36)}`;
  // A /24 per network in 10.213.0.0/16, drawn at random: two test files at once do not collide.
  const subnet = `10.213.${randomInt(1, 255)}`;
  const bridge = `${tag}br`;
  const made = { namespaces: [] as string[], links: [] as string[] };
  const destroy = async () => {
    for (const netns of made.namespaces) {
      try {
        ip(["netns", "del", netns]);
      } catch {
        // Already gone.
      }
    }
    for (const link of made.links) {
      try {
        ip(["link", "del", link]);
      } catch {
        // Went with its namespace.
      }
    }
  };
  try {
    ip(["link", "add", bridge, "type", "bridge"]);
    made.links.push(bridge);
    ip(["addr", "add", `${subnet}.1/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    const hosts = names.map((name, index) => {
      const netns = `${tag}-${name}`;
      const [outside, inside] = [`${tag}v${index}`, `${tag}i${index}`];
      ip(["netns", "add", netns]);
      made.namespaces.push(netns);
      ip(["link", "add", outside, "type", "veth", "peer", "name", inside]);
      made.links.push(outside);
      ip(["link", "set", inside, "netns", netns]);
      ip(["link", "set", outside, "master", bridge, "up"]);
      const address = `${subnet}.${10 + index}`;
      ip(["-n", netns, "addr", "add", `${address}/24`, "dev", inside]);
      ip(["-n", netns, "link", "set", inside, "up"]);
      ip(["-n", netns, "link", "set", "lo", "up"]);
      ip(["-n", netns, "route", "add", "default", "via", `${subnet}.1`]);
      return { name, netns, address };
    });
    const run = (host: NetnsHost, command: string, args: string[]) =>
      new Promise<string>((resolve, reject) =>
        execFile("ip", ["netns", "exec", host.netns, command, ...args], { encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) =>
          error ? reject(new Error(`${command} in ${host.name}: ${stderr.trim() || error.message}`)) : resolve(stdout),
        ),
      );
    const iptables = (host: NetnsHost, args: string[]) => run(host, "iptables", ["-w", ...args]);
    return {
      gateway: `${subnet}.1`,
      hosts,
      run,
      partition: async (host) => {
        for (const chain of ["INPUT", "OUTPUT"]) {
          await iptables(host, ["-A", chain, chain === "INPUT" ? "-i" : "-o", "lo", "-j", "ACCEPT"]);
          await iptables(host, ["-A", chain, "-j", "DROP"]);
        }
      },
      heal: async (host) => {
        for (const chain of ["INPUT", "OUTPUT"]) await iptables(host, ["-F", chain]);
      },
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/** Runs `body` with a host network that is removed afterwards, whether `body` succeeded or threw. */
export async function withHostNetwork<T>(names: string[], body: (network: HostNetwork) => Promise<T>): Promise<T> {
  const network = await createHostNetwork(names);
  try {
    return await body(network);
  } finally {
    await network.destroy();
  }
}

/** Every namespace and link this process's host networks could have left, for a test to check none did. */
export function leftoverHostNetworks(pid = process.pid): string[] {
  const tag = tagOf(pid);
  const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((line) => line.split(" ")[0]!);
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).split("\n").map((line) => line.split(": ")[1]?.split("@")[0] ?? "");
  return [...namespaces, ...links].filter((name) => name.startsWith(tag));
}
