import { spawn } from "node:child_process";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import os from "node:os";
import { SLIRP_DNS } from "./network";
import { exitOf } from "./process-io";
import { hostCommand } from "./support";

/** A destination an isolated sandbox may reach although it lies in a blocked range: a package index the service is configured with. */
export interface EgressException {
  address: string;
  port: number;
}

/**
 * Where an isolated sandbox's traffic may not go, though slirp4netns would carry it: every
 * private, shared, link-local and reserved range (other hosts of the site's network, cloud
 * metadata at 169.254.169.254) and every address of this host itself (a service bound to 0.0.0.0
 * answers on them). The sandbox has no IPv6 route at all.
 */
const BLOCKED_RANGES = ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4"];

/**
 * An instance's namespace also has a link to its host agent (`device`), which connects in to the
 * app: the app answers on it, never opens a connection over it, and whatever reaches its port
 * there is handed to its loopback (an app bound to 127.0.0.1, as start commands bind, answers).
 */
export interface InboundLink {
  device: string;
}

/** The ruleset, for iptables-restore in the sandbox's network namespace. */
export function egressRules(hostAddresses: string[], exceptions: EgressException[], inbound?: InboundLink): string {
  const reject = (destination: string) => [`-A OUTPUT -d ${destination} -p tcp -j REJECT --reject-with tcp-reset`, `-A OUTPUT -d ${destination} -j REJECT --reject-with icmp-admin-prohibited`];
  const nat = inbound ? ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", `-A PREROUTING -i ${inbound.device} -p tcp -j DNAT --to-destination 127.0.0.1`, "COMMIT"] : [];
  return [
    ...nat,
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    "-A OUTPUT -o lo -j ACCEPT",
    // Answers on connections the host agent opened; nothing new goes out on its link.
    ...(inbound ? [`-A OUTPUT -o ${inbound.device} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`, `-A OUTPUT -o ${inbound.device} -j REJECT`] : []),
    // The user-mode network's DNS forwarder: names still resolve.
    `-A OUTPUT -d ${SLIRP_DNS}/32 -p udp --dport 53 -j ACCEPT`,
    `-A OUTPUT -d ${SLIRP_DNS}/32 -p tcp --dport 53 -j ACCEPT`,
    ...exceptions.map((e) => `-A OUTPUT -d ${e.address}/32 -p tcp --dport ${e.port} -j ACCEPT`),
    ...[...new Set(hostAddresses)].map((address) => `${address}/32`).flatMap(reject),
    ...BLOCKED_RANGES.flatMap(reject),
    "COMMIT",
    "",
  ].join("\n");
}

/** This host's own IPv4 addresses, as slirp4netns would connect to them on a sandbox's behalf. */
export function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((entry): entry is os.NetworkInterfaceInfo => entry !== undefined && entry.family === "IPv4")
    .map((entry) => entry.address);
}

/**
 * The addresses and ports of the package indexes in `urls` (PIP_INDEX_URL, npm_config_registry …):
 * a sandbox keeps reaching them wherever they are. A name that does not resolve adds nothing.
 */
export async function indexExceptions(urls: string[]): Promise<EgressException[]> {
  const found: EgressException[] = [];
  for (const value of urls.flatMap((entry) => entry.split(/\s+/)).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const addresses = isIP(host) ? [host] : await lookup(host, { all: true, family: 4 }).then((all) => all.map((a) => a.address), () => []);
    for (const address of addresses) if (isIP(address) === 4) found.push({ address, port });
  }
  return found;
}

/**
 * Applies the egress rules in a network namespace (the one of the sandbox whose init is `pid`, or
 * the one bound at `path`), in one atomic iptables-restore run as root from outside: the
 * sandbox's own uid has no capability to change them. Rejects, and the sandbox must then not run,
 * when they could not be applied.
 */
export async function restrictEgress(namespace: { pid: number } | { path: string }, exceptions: EgressException[], inbound?: InboundLink): Promise<void> {
  const enter = "pid" in namespace ? [`--target=${namespace.pid}`, "--net"] : [`--net=${namespace.path}`];
  const child = spawn(hostCommand("nsenter"), [...enter, "--", hostCommand("iptables-restore")], { env: {}, stdio: ["pipe", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(egressRules(hostAddresses(), exceptions, inbound));
  const exit = await exitOf(child);
  if (exit.code !== 0) throw new Error(`the sandbox's network could not be restricted: ${stderr.trim().split("\n").pop() || `iptables-restore exit ${exit.code ?? exit.signal}`}`);
}
