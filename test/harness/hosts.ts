import { spawn } from "node:child_process";
import path from "node:path";
import { freePort } from "@slipway/shared";
import { instanceNetworkOwner, removeInstanceNetworks } from "@slipway/shared/sandbox";
import { compiledEntry } from "./entries";
import type { InProcessStack } from "./stack";

export interface SpawnedHost {
  id: string;
  /** Removes the instance networks it left (its next start would): for a host killed outright. */
  removeNetworks(): Promise<number>;
  child: ReturnType<typeof spawn>;
  exited: Promise<number | null>;
  output(): string;
  /** The ports it may give instances. */
  ports: number[];
}

/**
 * A host agent as a real process (what `npm start -w services/runtime-agent` runs without APP), on
 * the stack's Redis and storage, with a runtime root, host cache and ports of its own: several
 * side by side on this machine, as LOCAL_HOSTS runs them, or each in a host's network namespace
 * (`netns`, see netns-hosts.ts).
 */
export async function spawnHost(stack: Pick<InProcessStack, "env">, id: string, work: string, env: Record<string, string> = {}, portCount = 4, netns?: string): Promise<SpawnedHost> {
  const ports = await Promise.all(Array.from({ length: portCount }, () => freePort()));
  const root = path.join(work, id);
  // In a host's network namespace (nsenter: the mounts, /sys/fs/cgroup among them, stay this machine's).
  const [command, args] = netns ? ["nsenter", [`--net=/run/netns/${netns}`, "--", process.execPath, compiledEntry("runtime-agent")]] : [process.execPath, [compiledEntry("runtime-agent")]];
  const child = spawn(command, args, {
    env: {
      ...(process.env as Record<string, string>),
      ...stack.env,
      HOST_ID: id,
      HOST_ADDRESS: "127.0.0.1",
      INSTANCE_PORTS: ports.join(","),
      RUNTIME_ROOT: path.join(root, "runtime"),
      HOST_CACHE_DIR: path.join(root, "host-cache"),
      // One machine: its host agents share the uid claims, so no two instances share a uid (or a network).
      SANDBOX_UID_DIR: path.join(work, "sandbox-uids"),
      HEALTH_TIMEOUT_S: "30",
      HOST_METRICS_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const hostCache = env.HOST_CACHE_DIR ?? path.join(root, "host-cache");
  return { id, child, exited, output: () => output, ports, removeNetworks: () => removeInstanceNetworks(instanceNetworkOwner(id, hostCache)) };
}
