import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const fixture = path.join(path.dirname(new URL(import.meta.url).pathname), "fixtures", "service.ts");

function run(env: Record<string, string>, signalWhen?: RegExp) {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let signalled = false;
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (signalWhen && !signalled && signalWhen.test(stdout)) {
      signalled = true;
      child.kill("SIGTERM");
    }
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once("exit", (code) => resolve({ code, stdout, stderr })));
}

describe("runService", () => {
  it("a SIGTERM while starting stops the service once it has started, then exits 0", async () => {
    const { code, stdout } = await run({ START_MS: "1500" }, /starting/);
    expect(code).toBe(0);
    expect(stdout.trim().split("\n")).toEqual(["starting", "started", "stopping on SIGTERM", "stopped"]);
  });

  it("a SIGTERM while starting does not wait for start-up work that never ends: the service stops once started", async () => {
    const { code, stdout } = await run({ START_MS: "500", NEVER_READY: "1" }, /starting/);
    expect(code).toBe(0);
    expect(stdout.trim().split("\n")).toEqual(["starting", "started", "stopping on SIGTERM", "stopped"]);
  });

  it("a bad configuration is one line, its message alone; another start-up failure names the service; both exit 1", async () => {
    const config = await run({ MODE: "config" });
    expect(config.code).toBe(1);
    expect(config.stderr).toBe("invalid configuration: PORT must be a number\n");
    const crash = await run({ MODE: "crash" });
    expect(crash.code).toBe(1);
    expect(crash.stderr).toBe("fixture service failed to start: storage unreachable\n");
  });
});
