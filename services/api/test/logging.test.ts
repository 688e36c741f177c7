import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { serviceEnv } from "../../../test/harness/env";
import { compiledEntry } from "../../../test/harness/entries";
import { eventually } from "../../../test/harness/local-stack";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

it("the API's request log shows neither the bearer token nor cookies, only a redaction marker", async () => {
  const token = `tok-${randomUUID()}`;
  const cookie = `session=${randomUUID()}`;
  const port = await freePort();
  const api = spawn(process.execPath, [compiledEntry("api")], {
    cwd: root,
    env: { ...process.env, ...serviceEnv(), QUEUE_PREFIX: `log-${randomUUID().slice(0, 8)}`, API_PORT: String(port), API_HOST: "127.0.0.1", API_TOKEN: token, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  api.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  api.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise((resolve) => api.once("exit", resolve));
  try {
    const url = `http://127.0.0.1:${port}`;
    await eventually(async () => ((await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) ? true : undefined), 30_000, `the API to listen\n${output}`);
    const requestId = `logtest-${randomUUID()}`;
    const response = await fetch(`${url}/v1/apps`, { headers: { Authorization: `Bearer ${token}`, Cookie: cookie, "X-Request-Id": requestId } });
    expect(response.status).toBe(200);
    const line = await eventually(async () => output.split("\n").find((l) => l.includes(requestId) && l.includes("request completed")), 10_000, "the request's log line");
    const logged = JSON.parse(line) as { req: { headers: Record<string, string> } };
    expect(logged.req.headers.authorization).toBe("[Redacted]");
    expect(logged.req.headers.cookie).toBe("[Redacted]");
    expect(output).not.toContain(token);
    expect(output).not.toContain(cookie);
  } finally {
    api.kill("SIGTERM");
    await exited;
  }
});
