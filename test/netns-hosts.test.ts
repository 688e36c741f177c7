import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHostNetwork, leftoverHostNetworks, sweepStaleHostNetworks, withHostNetwork, type HostNetwork, type NetnsHost } from "./harness/netns-hosts";

/**
 * The multi-host harness itself: hosts in network namespaces on a bridge reach each other and
 * this machine, a partition cuts one off and healing restores it, and nothing of it outlives a
 * test, one that fails or a test process that was killed.
 */

/** From inside `from`, whether a TCP connection to `address:port` is accepted (python3: in every namespace). */
async function reaches(network: HostNetwork, from: NetnsHost, address: string, port: number): Promise<boolean> {
  const script = `import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close(); print("yes")\nexcept OSError: print("no")`;
  return (await network.run(from, "python3", ["-c", script, address, String(port)])).trim() === "yes";
}

/** A TCP server inside `host`'s namespace, answering until killed. */
function serveIn(host: NetnsHost, port: number) {
  const script = `import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", ${port})); s.listen(); print("up", flush=True)\nwhile True: s.accept()[0].close()`;
  const child = spawn("ip", ["netns", "exec", host.netns, "python3", "-c", script], { stdio: ["ignore", "pipe", "inherit"] });
  const up = new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
  return { child, up };
}

let server: Server;
let serverPort: number;
beforeAll(async () => {
  server = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  serverPort = (server.address() as { port: number }).port;
});
afterAll(() => {
  server.close();
});

describe("hosts in network namespaces", () => {
  it("reach each other and this machine; a partition cuts one host off both ways until healed", async () => {
    await withHostNetwork(["control", "h1", "h2"], async (network) => {
      const [control, h1, h2] = network.hosts as [NetnsHost, NetnsHost, NetnsHost];
      expect(new Set(network.hosts.map((h) => h.address)).size).toBe(3);
      const listening = serveIn(h1, 7070);
      try {
        await listening.up;
        expect(await reaches(network, control, h1.address, 7070)).toBe(true);
        expect(await reaches(network, h2, network.gateway, serverPort)).toBe(true);

        await network.partition(h1);
        expect(await reaches(network, control, h1.address, 7070)).toBe(false);
        expect(await reaches(network, h1, network.gateway, serverPort)).toBe(false);
        // The others still reach each other.
        expect(await reaches(network, h2, network.gateway, serverPort)).toBe(true);

        await network.heal(h1);
        expect(await reaches(network, control, h1.address, 7070)).toBe(true);
      } finally {
        listening.child.kill("SIGKILL");
      }
    });
    expect(leftoverHostNetworks()).toEqual([]);
  });

  it("leaves nothing behind when the test inside fails", async () => {
    await expect(
      withHostNetwork(["a", "b"], async (network) => {
        await network.partition(network.hosts[0]!);
        throw new Error("the test failed");
      }),
    ).rejects.toThrow("the test failed");
    expect(leftoverHostNetworks()).toEqual([]);
  });

  it("sweeps what a killed test process left, and only that", async () => {
    // A network made by a child process that is then killed before it can clean up.
    const child = spawn(process.execPath, ["--import", "tsx", "-e", `import("./test/harness/netns-hosts.ts").then(async (m) => { await m.createHostNetwork(["x"]); console.log("made"); setInterval(() => {}, 1000); })`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
    const pid = child.pid!;
    expect(leftoverHostNetworks(pid).length).toBeGreaterThan(0);
    const mine = await createHostNetwork(["mine"]);
    try {
      // Its owner still runs: left alone.
      sweepStaleHostNetworks();
      expect(leftoverHostNetworks(pid).length).toBeGreaterThan(0);
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
      const removed = sweepStaleHostNetworks();
      expect(removed.length).toBeGreaterThan(0);
      expect(leftoverHostNetworks(pid)).toEqual([]);
      expect(leftoverHostNetworks().length).toBeGreaterThan(0);
    } finally {
      await mine.destroy();
    }
    expect(leftoverHostNetworks()).toEqual([]);
  });
});
