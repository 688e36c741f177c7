import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packDirectory } from "@slipway/shared";
import { uniqueApp } from "../harness/env";
import { eventually, startLocalStack, type LocalStack } from "../harness/local-stack";
import { writeTree } from "../harness/stack";
import { labelApp } from "../harness/apps";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "dashboard-token";
let stack: LocalStack;
let browser: Browser;
let work: string;

const webApp = (label: string) => labelApp(label);

async function upload(label: string): Promise<string> {
  const dir = await writeTree(path.join(work, label), { "app.py": webApp(label) });
  const packed = await packDirectory(dir, path.join(work, `${label}.tar.gz`));
  const response = await fetch(`${stack.apiUrl}/v1/apps/${stack.app}/builds`, {
    method: "POST",
    headers: { "Content-Type": "application/gzip", Authorization: `Bearer ${TOKEN}` },
    body: await readFile(packed.file),
  });
  expect(response.status).toBe(202);
  return ((await response.json()) as { id: string }).id;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-dashboard-"));
  stack = await startLocalStack(uniqueApp("dash"), { instances: 1, env: { API_TOKEN: TOKEN } });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("dashboard in headless Chromium", () => {
  it("asks for the token, follows a build's log to success, rolls back from the UI and shows the instance switch", async () => {
    const instanceBody = () => fetch(stack.instanceUrls[0]!).then((r) => r.text(), () => "");
    const first = await upload("v1");
    const page = await browser.newPage();
    await page.goto(`${stack.apiUrl}/#/`);
    await page.fill("form.token input", TOKEN);
    await page.click("form.token button");
    await page.waitForSelector(`a[href="#/apps/${stack.app}"]`);

    // Watch the first build's log live until it ends.
    await page.goto(`${stack.apiUrl}/#/builds/${first}`);
    await page.waitForFunction("document.querySelector('#status')?.textContent === 'succeeded'", undefined, { timeout: 90_000 });
    expect(await page.textContent("#log")).toContain("Build succeeded: release v1");
    await eventually(async () => ((await instanceBody()) === "v1" ? true : undefined), 60_000, "v1 serving");

    const second = await upload("v2");
    await page.goto(`${stack.apiUrl}/#/builds/${second}`);
    await page.waitForFunction("document.querySelector('#status')?.textContent === 'succeeded'", undefined, { timeout: 90_000 });
    await eventually(async () => ((await instanceBody()) === "v2" ? true : undefined), 60_000, "v2 serving");

    await page.goto(`${stack.apiUrl}/#/apps/${stack.app}`);
    await page.click('button[data-rollback="1"]');
    // The instance row turns to v3 (v1's build, released again) and running once it has switched.
    await page.waitForFunction(
      "(() => { const row = document.querySelector('#instances tbody tr'); return row?.querySelector('[data-release]')?.textContent === 'v3' && row.textContent.includes('running'); })()",
      undefined,
      { timeout: 60_000 },
    );
    expect(await instanceBody()).toBe("v1");
    expect(await page.textContent("#releases")).toContain("rollback");

    await mkdir(path.join(root, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: path.join(root, "test-artifacts", "dashboard.png"), fullPage: true });
  }, 240_000);
});
