import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storageKeys } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually } from "../harness/local-stack";
import { processRunning, startInProcessStack, uploadDir, waitForBuild, writeTree, type InProcessStack } from "../harness/stack";
import { parseProbe, PROBE_SOURCE } from "./probe";

/**
 * A build's network reaches the package indexes, and nothing of the site it runs in: slirp4netns
 * carried a build's connection to any address, this host's own included, so every service bound
 * to 0.0.0.0 (the API's default) answered it. Only traffic to this machine's own addresses is made
 * here; the private ranges are shown blocked by the rules themselves, not by sending to them.
 */
let stack: InProcessStack;
let work: string;
const servers: Server[] = [];
let hostAddress: string;
let hostService: number;
let index: number;

async function listen(): Promise<number> {
  const server = createServer((socket) => socket.end("HTTP/1.0 200 OK\r\n\r\nreached\n"));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  return (server.address() as { port: number }).port;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-build-network-"));
  const address = Object.values(os.networkInterfaces())
    .flat()
    .find((entry) => entry && entry.family === "IPv4" && !entry.internal);
  if (!address) throw new Error("this test needs a non-loopback IPv4 address on the host");
  hostAddress = address.address;
  [hostService, index] = await Promise.all([listen(), listen()]);
  // The worker's own package index, on this host: it must stay reachable.
  stack = await startInProcessStack({ PIP_EXTRA_INDEX_URL: `http://${hostAddress}:${index}/simple` });
});

afterAll(async () => {
  await stack?.close();
  for (const server of servers) server.close();
  await rm(work, { recursive: true, force: true });
});

async function build(buildEnv: Record<string, string>) {
  const app = uniqueApp("net");
  await stack.api.apps.upsert(app, { buildEnv });
  const dir = await writeTree(path.join(work, app), { "probe.py": PROBE_SOURCE, "app.py": "" });
  return { app, queued: await uploadDir(stack.baseUrl, app, dir) };
}

describe("a build's network", () => {
  it("reaches no service of this host bound to 0.0.0.0, but still the package index the worker is configured with", async () => {
    const { app, queued } = await build({ PRE_BUILD_COMMAND: "python3 probe.py", PROBE_CONNECT: `${hostAddress}:${hostService} ${hostAddress}:${index}` });
    const built = await waitForBuild(stack.baseUrl, queued.id);
    expect(built.error).toBeUndefined();
    const probe = parseProbe(await stack.api.store.getText(storageKeys.buildLog(app, built.id)));
    expect(probe.connect[`${hostAddress}:${hostService}`]).not.toMatch(/^connected/);
    expect(probe.connect[`${hostAddress}:${index}`]).toMatch(/^connected/);
  });

  it("is closed to the private, link-local and reserved ranges and to this host's addresses, by rules the build cannot change", async () => {
    const marker = `slipway-net-${Math.random().toString(36).slice(2)}`;
    const { queued } = await build({ PRE_BUILD_COMMAND: `exec python3 -c 'import time; time.sleep(120)' ${marker}` });
    // The command itself, inside the namespace (bwrap names the marker too, from outside), once it runs.
    const command = `^python3 -c .*${marker}`;
    await eventually(async () => (processRunning(command) ? true : undefined), 120_000, "the build's command to run");
    const pid = execFileSync("pgrep", ["-n", "-f", command], { encoding: "utf8" }).trim();
    const rules = execFileSync("nsenter", [`--target=${pid}`, "--net", "--", "iptables", "-S", "OUTPUT"], { encoding: "utf8" });
    for (const range of ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", `${hostAddress}/32`]) {
      expect(rules).toContain(`-A OUTPUT -d ${range} -p tcp -j REJECT --reject-with tcp-reset`);
    }
    // The index's exception comes before the host's address is refused.
    expect(rules.indexOf(`-d ${hostAddress}/32 -p tcp -m tcp --dport ${index} -j ACCEPT`)).toBeGreaterThan(-1);
    expect(rules.indexOf(`--dport ${index} -j ACCEPT`)).toBeLessThan(rules.indexOf(`-d ${hostAddress}/32 -p tcp -j REJECT`));
    await fetch(`${stack.baseUrl}/v1/builds/${queued.id}/cancel`, { method: "POST" });
    await waitForBuild(stack.baseUrl, queued.id);
  });
});
