import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { exitOf, firstChunk } from "./process-io";

const NETWORK_ATTACH_TIMEOUT_MS = 30_000;

/**
 * slirp4netns gives the sandbox's network namespace a tap device routed through the host's stack
 * in user space; --disable-host-loopback makes 10.0.2.2 (the host) refuse, so Redis, storage and
 * the API on the host's loopback are out of reach, while the package indexes are not.
 */
export async function attachNetwork(namespace: number | { path: string }): Promise<ChildProcess> {
  // A bound namespace outlives its sandboxes: its slirp4netns ends when the agent that made it
  // does (--exit-fd: this process holds the other end), not only when the agent removes it.
  const target = typeof namespace === "number" ? [String(namespace)] : ["--exit-fd=4", "--netns-type=path", namespace.path];
  const slirp = spawn(
    "slirp4netns",
    ["--configure", "--mtu=65520", "--disable-host-loopback", "--enable-seccomp", "--ready-fd=3", ...target, "tap0"],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  (slirp.stdio[4] as import("node:stream").Writable | null)?.on("error", () => undefined);
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

/** The user-mode network's DNS forwarder, as slirp4netns configures it. */
export const SLIRP_DNS = "10.0.2.3";

/** A resolv.conf naming the user-mode network's DNS, written into `dir` (same content for every worker). */
export async function writeSandboxResolvConf(dir: string): Promise<string> {
  const file = path.join(dir, "slipway-sandbox-resolv.conf");
  await writeFile(file, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
  return file;
}
