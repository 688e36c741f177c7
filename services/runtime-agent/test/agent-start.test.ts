import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { compiledEntry } from "../../../test/harness/entries";
import { serviceEnv } from "../../../test/harness/env";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-agent-start-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

/** The compiled agent until it exits: its exit code and everything it printed. */
function runAgent(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [compiledEntry("runtime-agent")], {
    cwd: root,
    env: { ...process.env, ...serviceEnv(), APP: "demo", INSTANCE_ID: "i-1", RUNTIME_ROOT: path.join(work, "runtime"), LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once("exit", (code) => resolve({ code, output })));
}

describe("the agent process's start", () => {
  it("opens its port before loading anything else, and still fails in one line when the port is taken", async () => {
    const taken = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, "0.0.0.0", resolve));
    try {
      const { code, output } = await runAgent({ PORT: String(port) });
      expect(code, output).toBe(1);
      expect(output.trim().split("\n"), output).toHaveLength(1);
      expect(output).toMatch(/^runtime agent failed to start: .*EADDRINUSE/);
    } finally {
      taken.close();
    }
  });

  it("leaves a PORT that is no port number to the configuration, which refuses it in one line", async () => {
    const { code, output } = await runAgent({ PORT: "80a" });
    expect(code, output).toBe(1);
    expect(output.trim().split("\n"), output).toHaveLength(1);
    expect(output).toMatch(/PORT/);
  });
});
