import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ChildProcess } from "node:child_process";
import { restrictEgress, type EgressException } from "./egress";
import { attachNetwork } from "./network";
import { runOnHost } from "./process-io";
import { hostCommand } from "./support";

/** Where `ip netns` binds named namespaces. */
const NETNS_DIR = "/run/netns";
/** The instance's side of its link to the host agent, inside its namespace. */
const INSTANCE_DEVICE = "eth0";

/**
 * An instance's own network: a network namespace with
 * - a veth link to its host agent, a /30 of 10.128.0.0/15 picked by the instance's slot (its
 *   sandbox uid's, unique on the machine), over which the host agent connects in to the app; the
 *   app only answers there, and what arrives is handed to its loopback;
 * - slirp4netns for the internet, the host's loopback refused, and the egress rules of builds
 *   (private ranges and every address of the host rejected).
 * So the app reaches neither a service on the host's loopback nor one on its addresses, and the
 * ports it binds are its namespace's, never the host's.
 */
export class InstanceNetwork {
  private constructor(
    /** The bound namespace (`/run/netns/<name>`), for nsenter. */
    readonly namespace: string,
    /** The app's address, where the host agent reaches its ports. */
    readonly address: string,
    private readonly name: string,
    private readonly slot: number,
    private readonly slirp: ChildProcess,
  ) {}

  /**
   * `owner` names the host agent's namespaces (so a restarted agent finds its leftovers), `id` the
   * instance; `slot` (0 … 32,767) picks its addresses.
   */
  static async create(owner: string, id: string, slot: number, exceptions: EgressException[] = []): Promise<InstanceNetwork> {
    const name = instanceNetworkName(owner, id);
    const hostDevice = `sw${digest(`${owner}/${id}`).slice(0, 12)}`;
    await removeNamespace(name);
    const claimed = await claimSlot(slot, name);
    const { hostAddress, appAddress } = slotAddresses(claimed);
    const ip = (...args: string[]) => runOnHost(hostCommand("ip"), args);
    let slirp: ChildProcess | undefined;
    try {
      await ip("netns", "add", name);
      await ip("link", "add", hostDevice, "type", "veth", "peer", "name", INSTANCE_DEVICE, "netns", name);
      await ip("addr", "add", `${hostAddress}/30`, "dev", hostDevice);
      await ip("link", "set", hostDevice, "up");
      await ip("-n", name, "addr", "add", `${appAddress}/30`, "dev", INSTANCE_DEVICE);
      await ip("-n", name, "link", "set", INSTANCE_DEVICE, "up");
      await ip("-n", name, "link", "set", "lo", "up");
      // What the host agent sends to the app's address is handed to its loopback (the DNAT in the
      // rules): the kernel routes to 127.0.0.1 from a device only with route_localnet.
      await runOnHost(hostCommand("nsenter"), [`--net=${NETNS_DIR}/${name}`, "--", hostCommand("bash"), "-c", `echo 1 > /proc/sys/net/ipv4/conf/${INSTANCE_DEVICE}/route_localnet`]);
      slirp = await attachNetwork({ path: `${NETNS_DIR}/${name}` });
      await restrictEgress({ path: `${NETNS_DIR}/${name}` }, exceptions, { device: INSTANCE_DEVICE });
      return new InstanceNetwork(`${NETNS_DIR}/${name}`, appAddress, name, claimed, slirp);
    } catch (error) {
      slirp?.kill("SIGKILL");
      await removeNamespace(name);
      await releaseSlot(claimed);
      throw error;
    }
  }

  /** Removes the namespace (its link goes with it), the user-mode network and the slot's claim. */
  async close(): Promise<void> {
    this.slirp.kill("SIGKILL");
    await removeNamespace(this.name);
    await releaseSlot(this.slot);
  }
}

/**
 * Where the machine's instance networks claim their /30s: a directory per slot, made atomically,
 * naming the namespace that holds it. Every host agent on the machine (whatever its uid
 * directory) claims here, so no two instances share addresses; a claim whose namespace is gone is
 * taken over.
 */
const SLOTS_DIR = "/run/slipway/instance-slots";

/** Claims `preferred` or the next free slot after it; answers the slot claimed. */
async function claimSlot(preferred: number, name: string): Promise<number> {
  await mkdir(SLOTS_DIR, { recursive: true, mode: 0o700 });
  for (let step = 0; step < 256; step++) {
    const slot = (preferred + step) % SLOT_COUNT;
    const dir = path.join(SLOTS_DIR, String(slot));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await mkdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        const holder = await readFile(path.join(dir, "netns"), "utf8").catch(() => undefined);
        // A holder that is gone (its agent killed before removing it) leaves a stale claim.
        if (holder !== undefined && holder !== name && !(await exists(path.join(NETNS_DIR, holder)))) {
          await rm(dir, { recursive: true, force: true });
          continue;
        }
        if (holder !== name) break;
      }
      await writeFile(path.join(dir, "netns"), name);
      // A network made by hand or by something else on these addresses: the slot is not ours to use.
      if ((await hostOutput(hostCommand("ip"), ["-o", "-4", "addr", "show", "to", slotAddresses(slot).subnet])).trim()) {
        await releaseSlot(slot);
        break;
      }
      return slot;
    }
  }
  throw new Error(`no free instance network slot near ${preferred} in ${SLOTS_DIR}`);
}

async function releaseSlot(slot: number): Promise<void> {
  await rm(path.join(SLOTS_DIR, String(slot)), { recursive: true, force: true });
}

const exists = (file: string) => stat(file).then(() => true, () => false);

/**
 * Who made an instance's network: a host agent, named by its HOST_ID and its host cache (two
 * agents on one machine never share both, even two stacks' `local-1`s).
 */
export const instanceNetworkOwner = (hostId: string, hostCache: string) => `${hostId}@${hostCache}`;

/** Removes every instance network `owner` made (a host agent starting again: none of its instances runs). */
export async function removeInstanceNetworks(owner: string): Promise<number> {
  const prefix = `slw-${digest(owner).slice(0, 8)}-`;
  const names = (await readdir(NETNS_DIR).catch(() => [] as string[])).filter((name) => name.startsWith(prefix));
  for (const name of names) await removeNamespace(name);
  // Their slots' claims, now naming namespaces that are gone.
  for (const slot of await readdir(SLOTS_DIR).catch(() => [] as string[])) {
    const holder = await readFile(path.join(SLOTS_DIR, slot, "netns"), "utf8").catch(() => "");
    if (holder.startsWith(prefix)) await rm(path.join(SLOTS_DIR, slot), { recursive: true, force: true });
  }
  return names.length;
}

/** `slw-<owner hash>-<instance hash>`: the owner's part lets a restarted agent find its own. */
function instanceNetworkName(owner: string, id: string): string {
  return `slw-${digest(owner).slice(0, 8)}-${digest(id).slice(0, 12)}`;
}

async function removeNamespace(name: string): Promise<void> {
  await runOnHost(hostCommand("ip"), ["netns", "del", name]).catch(() => undefined);
}

const hostOutput = async (command: string, args: string[]) => (await promisify(execFile)(command, args, { encoding: "utf8" })).stdout;

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

/** The slot's /30 in 10.128.0.0/15: the host agent's end, the app's end. */
const SLOT_COUNT = 32_768;

export function slotAddresses(slot: number): { hostAddress: string; appAddress: string; subnet: string } {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) throw new Error(`instance network slot ${slot} is out of range`);
  const base = [10, 128 + (slot >> 14), (slot >> 6) & 255, (slot & 63) << 2];
  const at = (offset: number) => [...base.slice(0, 3), base[3]! + offset].join(".");
  return { hostAddress: at(1), appAddress: at(2), subnet: `${at(0)}/30` };
}
