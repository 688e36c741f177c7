import { execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { stat } from "node:fs/promises";
import os from "node:os";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, loadApiConfig, readLocalToken } from "@slipway/shared";
import { compiledEntry } from "../harness/entries";
import { serviceEnv, uniqueApp } from "../harness/env";
import { startLocalStack, type LocalStack } from "../harness/local-stack";

/**
 * An API without a token lets anything that reaches it (any user or process of the machine, an
 * app's build included) deploy into every app and read its secrets. `npm start` used to run it so.
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const slipwayBin = path.join(root, "cli/bin/slipway.mjs");

function slipway(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  // Outside the checkout: `apps create` writes slipway.toml where it runs.
  const cwd = mkdtempSync(path.join(os.tmpdir(), "slipway-token-cli-"));
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== "SLIPWAY_TOKEN")) as Record<string, string>;
    execFile(slipwayBin, args, { cwd, env: { ...clean, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("npm start", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack(uniqueApp("token"), { instances: 1 });
  });
  afterAll(async () => {
    if (stack?.child.exitCode === null) await stack.stop();
  });

  it("makes an API token on first start, prints it once, keeps it for its owner only, and the API refuses requests without it", async () => {
    const token = await readLocalToken(stack.dataDir);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(path.join(stack.dataDir, "api-token"))).mode & 0o777).toBe(0o600);
    expect(stack.output().split(token!).length - 1).toBe(1);

    const anonymous = await fetch(`${stack.apiUrl}/v1/apps`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    const authorized = await fetch(`${stack.apiUrl}/v1/apps`, { headers: { Authorization: `Bearer ${token}` } });
    expect(authorized.status).toBe(200);
  });

  it("the CLI on the same machine finds the token by itself, and sends it to no API off loopback", async () => {
    const local = await slipway(["apps", "create", stack.app, "--json"], { SLIPWAY_URL: stack.apiUrl, SLIPWAY_DATA_DIR: stack.dataDir });
    expect(local.stderr).toBe("");
    expect(local.code).toBe(0);
    // Anywhere else no token goes out: a server the CLI reaches by a name that is not loopback's.
    const seen: (string | undefined)[] = [];
    const server = createServer((request, response) => {
      seen.push(request.headers.authorization);
      response.writeHead(401, { "Content-Type": "application/json" }).end('{"error":{"code":"unauthorized","message":"no"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const elsewhere = await slipway(["apps", "list"], { SLIPWAY_URL: `http://0.0.0.0:${port}`, SLIPWAY_DATA_DIR: stack.dataDir });
      expect(elsewhere.code).not.toBe(0);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((header) => header === undefined)).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe("the API", () => {
  const base = () => ({ ...serviceEnv(), API_PORT: "8080" });

  it("refuses to start on a non-loopback address without a token, in one line, unless API_INSECURE=1", async () => {
    expect(() => loadApiConfig({ ...base(), API_HOST: "0.0.0.0" })).toThrow(/API_TOKEN is required when the API listens beyond loopback \(API_HOST=0\.0\.0\.0\)/);
    expect(loadApiConfig({ ...base(), API_HOST: "0.0.0.0", API_TOKEN: "t" }).API_TOKEN).toBe("t");
    expect(loadApiConfig({ ...base(), API_HOST: "0.0.0.0", API_INSECURE: "1" }).API_INSECURE).toBe("1");
    expect(loadApiConfig({ ...base(), API_HOST: "127.0.0.1" }).API_TOKEN).toBeUndefined();

    const port = await freePort();
    const child = spawn(process.execPath, [compiledEntry("api")], { env: { ...(process.env as Record<string, string>), ...serviceEnv(), API_HOST: "0.0.0.0", API_PORT: String(port), API_TOKEN: "", API_INSECURE: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/API_TOKEN is required/);
  });
});
