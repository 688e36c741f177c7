import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDashboard } from "../../../scripts/build-dashboard";
import { json } from "../../../test/harness/http";
import { startInProcessStack, type InProcessStack } from "../../../test/harness/stack";

let dir: string;
let stack: InProcessStack;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "slipway-dashboard-dist-"));
  stack = await startInProcessStack({ DASHBOARD_DIR: dir, LOG_LEVEL: "silent" }, { worker: false });
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the dashboard's prebuilt files", () => {
  it("answer 503 with the error shape and what to run while the bundle is missing, then serve what the build wrote", async () => {
    for (const file of ["/", "/dashboard.js"]) {
      const response = await fetch(`${stack.baseUrl}${file}`);
      expect(response.status).toBe(503);
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const body = await json<{ error: { code: string; message: string } }>(response);
      expect(body.error.code).toBe("dashboard_not_built");
      expect(body.error.message).toContain("npm run build");
    }
    await buildDashboard(dir);
    const page = await fetch(`${stack.baseUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain('src="/dashboard.js"');
    const script = await fetch(`${stack.baseUrl}/dashboard.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^application\/javascript/);
    expect((await script.text()).length).toBeGreaterThan(1000);
  });

  it("refuses a DASHBOARD_DIR that is not absolute", async () => {
    await expect(startInProcessStack({ DASHBOARD_DIR: "dist/dashboard" }, { worker: false })).rejects.toThrow("invalid configuration: DASHBOARD_DIR must be an absolute path");
  });
});
