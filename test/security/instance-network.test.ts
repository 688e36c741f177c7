import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, type InstanceResponse } from "@slipway/shared";
import { InstanceNetwork, instanceNetworkOwner, removeInstanceNetworks } from "@slipway/shared/sandbox";
import { uniqueApp } from "../harness/env";
import { spawnHost, type SpawnedHost } from "../harness/hosts";
import { json } from "../harness/http";
import { eventually } from "../harness/local-stack";
import { useStack } from "../harness/use-stack";

const { stack, work, deploy } = useStack("instance-network");
let host: SpawnedHost | undefined;
afterAll(async () => {
  host?.child.kill("SIGTERM");
  await host?.exited;
  await host?.removeNetworks();
});

/**
 * An app that tries what an attacker's app would: connect to every target named in TARGETS
 * (answering what happened to each), and bind SQUAT_PORT on every address it has.
 */
const PROBE_APP = `
import json, os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def reach(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "connected"
    except Exception as error:
        return type(error).__name__
squat = socket.socket()
squat.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
squat.bind(("0.0.0.0", int(os.environ["SQUAT_PORT"])))
squat.listen()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({name: reach(*target) for name, target in json.loads(os.environ["TARGETS"]).items()}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

const hostAddress = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address;

describe("instance networks of two host agents on one machine", () => {
  it("two agents that both chose one slot (uid directories of their own, the same HOST_ID) get distinct addresses, and each removes only its own", async () => {
    const ownerA = instanceNetworkOwner("local-1", path.join(work, "stack-a", "host-cache"));
    const ownerB = instanceNetworkOwner("local-1", path.join(work, "stack-b", "host-cache"));
    const slot = 30_000 + (process.pid % 500);
    const made: InstanceNetwork[] = [];
    try {
      const a = await InstanceNetwork.create(ownerA, "i1", slot);
      made.push(a);
      const b = await InstanceNetwork.create(ownerB, "i1", slot);
      made.push(b);
      expect(b.address).not.toBe(a.address);
      // A restarted agent A removes what it left, and only that.
      expect(await removeInstanceNetworks(ownerA)).toBe(1);
      expect(existsSync(b.namespace)).toBe(true);
      expect(existsSync(a.namespace)).toBe(false);
      // Another network preferring the same slot, with A's closed (the kernel may still be tearing
      // its link down) and B's live: never the address of a link that is still there.
      await a.close();
      const c = await InstanceNetwork.create(ownerA, "i2", slot);
      made.push(c);
      expect(c.address).not.toBe(b.address);
    } finally {
      for (const network of made) await network.close();
    }
    for (const network of made) expect(existsSync(network.namespace)).toBe(false);
  });
});

describe("an instance's own network", () => {
  it("reaches neither the API nor Redis on the host's loopback or addresses, nor its host agent's link; binds no host port; still reaches the internet", async () => {
    host = await spawnHost(stack, "netns-host", work, {}, 2);
    const app = uniqueApp("netprobe");
    const redisPort = new URL(stack.env.REDIS_URL!).port;
    const apiPort = new URL(stack.baseUrl).port;
    const squatPort = await freePort();
    const targets: Record<string, [string, string | number]> = {
      redisOnLoopback: ["127.0.0.1", redisPort],
      apiOnLoopback: ["127.0.0.1", apiPort],
      ...(hostAddress ? { apiOnHostAddress: [hostAddress, apiPort], redisOnHostAddress: [hostAddress, redisPort] } : {}),
      internet: ["pypi.org", 443],
    };
    const put = await fetch(`${stack.baseUrl}/v1/apps/${app}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ env: { TARGETS: JSON.stringify(targets), SQUAT_PORT: String(squatPort) } }),
    });
    expect(put.status).toBe(201);
    const dir = path.join(work, "probe");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "app.py"), PROBE_APP);
    expect((await deploy(app, dir)).build.status).toBe("succeeded");
    const instance = await eventually(async () => (await json<InstanceResponse[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/instances`))).find((i) => i.state === "running"), 120_000, "the probe app running");
    const answers = await json<Record<string, string>>(await fetch(`http://${instance.address}:${instance.port}/`));
    // The app, bound to 127.0.0.1 in its namespace, answered through its host agent's link.
    expect(answers.internet).toBe("connected");
    for (const [name, outcome] of Object.entries(answers)) if (name !== "internet") expect(outcome, name).not.toBe("connected");

    // Its host agent's end of the link answers nothing new from the app either.
    const link = spawnSync("ip", ["-o", "-4", "addr", "show"], { encoding: "utf8" }).stdout.split("\n").find((line) => /\bsw[0-9a-f]{12}\b/.test(line));
    expect(link, "the instance's link on the host").toBeDefined();
    const agentEnd = /inet (\S+)\//.exec(link!)![1]!;
    const viaLink = await fetch(`${stack.baseUrl}/v1/apps/${app}`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      // Another port to squat: the new release starts beside the old one, in the same namespace.
      body: JSON.stringify({ env: { TARGETS: JSON.stringify({ agentEnd: [agentEnd, apiPort] }), SQUAT_PORT: String(await freePort()) } }),
    });
    expect(viaLink.status).toBe(200);
    const relaunched = await eventually(
      async () => {
        const running = (await json<InstanceResponse[]>(await fetch(`${stack.baseUrl}/v1/apps/${app}/instances`))).find((i) => i.state === "running" && i.release !== instance.release);
        if (!running) return undefined;
        const answer = await json<Record<string, string>>(await fetch(`http://${running.address}:${running.port}/`));
        return "agentEnd" in answer ? answer : undefined;
      },
      120_000,
      "the config release serving",
    );
    expect(relaunched.agentEnd).not.toBe("connected");

    // The port it bound is its namespace's: on the host nothing listens there, and the host can take it.
    const onHost = await new Promise<string>((resolve) => {
      const socket = net.connect(squatPort, "127.0.0.1", () => resolve("connected")).on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
      socket.setTimeout(3000, () => resolve("timeout"));
    });
    expect(onHost).toBe("ECONNREFUSED");
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(squatPort, "0.0.0.0", () => resolve()));
    server.close();
  });
});
