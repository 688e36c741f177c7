import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppLogStream, packDirectory, recordKeys } from "@slipway/shared";
import { redisFor, uniqueApp } from "../harness/env";
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
    // The app's address at the front door, as a link.
    await page.waitForSelector(`#app-url a[href="http://${stack.app}.localhost:${stack.frontDoorPort}/"]`);
    let asked = "";
    page.once("dialog", (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await page.click('button[data-rollback="1"]');
    // The instance row turns to v3 (v1's build, released again) and running once it has switched.
    await page.waitForFunction(
      "(() => { const row = document.querySelector('#instances tbody tr'); return row?.querySelector('[data-release]')?.textContent === 'v3' && row.textContent.includes('running'); })()",
      undefined,
      { timeout: 60_000 },
    );
    expect(await instanceBody()).toBe("v1");
    expect(await page.textContent("#releases")).toContain("rollback");
    expect(asked).toContain("v1");

    // Where the instance runs: its host and the address its port is on.
    expect(await page.textContent("#instances tbody tr")).toContain(`127.0.0.1:${new URL(stack.instanceUrls[0]!).port}`);
    await mkdir(path.join(root, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: path.join(root, "test-artifacts", "dashboard.png"), fullPage: true });
  }, 240_000);

  it("scales the app from its page, and says when the hosts have no room for all of it", async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.apiUrl}/#/`);
    await page.fill("form.token input", TOKEN);
    await page.click("form.token button");
    await page.goto(`${stack.apiUrl}/#/apps/${stack.app}`);
    await page.waitForFunction("document.querySelector('#scale-status')?.textContent.startsWith('1 asked for, 1 placed')");
    // The local stack's one host has a single port: a second instance cannot be placed.
    await page.fill("#scale-input", "2");
    await page.click("#scale-form button");
    await page.waitForFunction("document.querySelector('#scale-status')?.textContent.includes('2 asked for, 1 placed: only 1 could be placed')");
    const scale = (await (await fetch(`${stack.apiUrl}/v1/apps/${stack.app}/scale`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as { instances: number; placed: number };
    expect(scale).toMatchObject({ instances: 2, placed: 1 });
    await page.fill("#scale-input", "1");
    await page.click("#scale-form button");
    await page.waitForFunction("document.querySelector('#scale-status')?.textContent === '1 asked for, 1 placed'");
  }, 60_000);
});

// The tests below work on the app the first one deployed and rolled back.
describe("dashboard day-2 operations", () => {
  const api = async <T>(pathname: string, init: RequestInit = {}): Promise<T> => {
    const response = await fetch(`${stack.apiUrl}${pathname}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) } });
    expect(response.ok, `${pathname}: HTTP ${response.status}`).toBe(true);
    return (await response.json()) as T;
  };
  const revealedEnv = async () => (await api<{ env: Record<string, string> }>(`/v1/apps/${stack.app}?reveal=1`)).env;

  async function signedIn(hash: string, viewport?: { width: number; height: number }): Promise<Page> {
    const page = await browser.newPage(viewport ? { viewport } : {});
    await page.addInitScript(`localStorage.setItem("slipway-token", ${JSON.stringify(TOKEN)})`);
    await page.goto(`${stack.apiUrl}/#${hash}`);
    return page;
  }

  /** Resolves on the next change the page's own refresh makes inside `selector`. */
  const nextRefreshOf = (page: Page, selector: string) =>
    page.evaluate(
      `new Promise((resolve) => new MutationObserver(() => resolve(true)).observe(document.querySelector(${JSON.stringify(selector)}), { subtree: true, childList: true, characterData: true }))`,
    );

  it("keeps keyboard focus and typed text across refreshes", async () => {
    const page = await signedIn(`/apps/${stack.app}`);
    await page.waitForSelector("#instances tbody tr");
    await page.focus('#config-add input[name="name"]');
    await page.keyboard.type("DRAFT");
    // The heartbeat column counts seconds, so each refresh rewrites it.
    await nextRefreshOf(page, "#instances tbody");
    await nextRefreshOf(page, "#instances tbody");
    expect(await page.evaluate("document.activeElement?.name")).toBe("name");
    expect(await page.inputValue('#config-add input[name="name"]')).toBe("DRAFT");
    await page.close();
  }, 60_000);

  it("asks before a rollback and shows the API's message when it fails", async () => {
    const page = await signedIn(`/apps/${stack.app}`);
    const button = page.locator("button[data-rollback]").first();
    await button.waitFor();
    const before = (await api<unknown[]>(`/v1/apps/${stack.app}/releases`)).length;
    page.once("dialog", (dialog) => void dialog.dismiss());
    await button.click();
    expect(await button.isEnabled()).toBe(true);
    expect((await api<unknown[]>(`/v1/apps/${stack.app}/releases`)).length).toBe(before);

    await page.route("**/v1/apps/*/releases", (route) =>
      route.request().method() === "POST" ? route.fulfill({ status: 409, json: { error: { code: "conflict", message: "a rollout is in progress" } } }) : route.continue(),
    );
    page.once("dialog", (dialog) => void dialog.accept());
    await button.click();
    await page.waitForFunction("document.querySelector('#rollback-error')?.textContent.includes('a rollout is in progress')");
    await page.close();
  }, 60_000);

  it("adds, edits a secret and unsets config, and the new release reaches the instance", async () => {
    const page = await signedIn(`/apps/${stack.app}`);
    const valueOf = (name: string) => page.locator(`#config tr[data-env="${name}"] [data-env-value]`);
    // The first save answers only once the next variable is typed: what was typed is kept.
    let answer!: () => void;
    const typed = new Promise<void>((resolve) => (answer = resolve));
    await page.route("**/v1/apps/*/config", async (route) => {
      await typed;
      await route.continue();
    });
    await page.fill('#config-add input[name="name"]', "GREETING");
    await page.fill('#config-add input[name="value"]', "hello");
    await page.click('#config-add button');
    expect(await page.isDisabled("#config-add button")).toBe(true);
    await page.fill('#config-add input[name="name"]', "API_KEY");
    await page.fill('#config-add input[name="value"]', "s3cret");
    answer();
    await page.waitForSelector("#config-add button:not([disabled])");
    await page.unroute("**/v1/apps/*/config");
    await expect.poll(() => valueOf("GREETING").textContent()).toBe("hello");
    expect((await revealedEnv()).GREETING).toBe("hello");
    expect([await page.inputValue('#config-add input[name="name"]'), await page.inputValue('#config-add input[name="value"]')]).toEqual(["API_KEY", "s3cret"]);

    await page.click('#config-add button');
    await expect.poll(() => valueOf("API_KEY").textContent()).toBe("••••");
    expect(await page.content()).not.toContain("s3cret");
    // The mask is never sent back: saving a secret wants its new value typed.
    await page.click('button[data-save="API_KEY"]');
    await page.waitForFunction("document.querySelector('#config-error')?.textContent.includes('type its new value')");
    await page.fill('input[data-value-of="API_KEY"]', "s3cret2");
    await page.click('button[data-save="API_KEY"]');
    await expect.poll(async () => (await revealedEnv()).API_KEY).toBe("s3cret2");

    await page.click('button[data-unset="GREETING"]');
    await page.locator('#config tr[data-env="GREETING"]').waitFor({ state: "detached" });
    expect(await revealedEnv()).not.toHaveProperty("GREETING");

    const [latest] = await api<{ version: number; reason: string }[]>(`/v1/apps/${stack.app}/releases?limit=1`);
    expect(latest!.reason).toBe("config");
    await page.waitForFunction(`document.querySelector("#instances tbody tr [data-release]")?.textContent === "v${latest!.version}"`, undefined, { timeout: 60_000 });
    await page.close();
  }, 120_000);

  it("follows the app log live, filtered to one instance", async () => {
    const page = await signedIn(`/apps/${stack.app}`);
    await page.waitForSelector("#instances tbody tr");
    const [instance] = await api<{ instanceId: string }[]>(`/v1/apps/${stack.app}/instances`);
    const redis = redisFor(stack.env);
    const logs = new AppLogStream(redis, recordKeys(stack.env.QUEUE_PREFIX));
    const line = (instanceId: string, text: string) => [{ time: new Date().toISOString(), instanceId, release: null, stream: "stdout" as const, line: text }];
    const bounds = { maxLines: 1000, maxAgeS: 3600 };
    try {
      await logs.append(stack.app, line(instance!.instanceId, "hello from all"), bounds);
      await page.waitForFunction("document.querySelector('#app-log')?.textContent.includes('hello from all')", undefined, { timeout: 30_000 });

      await page.selectOption("#log-instance", instance!.instanceId);
      await logs.append(stack.app, line("someone-else", "not for this filter"), bounds);
      await logs.append(stack.app, line(instance!.instanceId, "hello from mine"), bounds);
      await page.waitForFunction("document.querySelector('#app-log')?.textContent.includes('hello from mine')", undefined, { timeout: 30_000 });
      expect(await page.textContent("#app-log")).not.toContain("not for this filter");
    } finally {
      redis.disconnect();
      await page.close();
    }
  }, 60_000);

  it("deploys a .tar.gz chosen on the app page, follows its build and the instance serves it; refuses another kind of file", async () => {
    const dir = await writeTree(path.join(work, "from-page"), { "app.py": webApp("from-page") });
    const packed = await packDirectory(dir, path.join(work, "from-page.tar.gz"));
    const page = await signedIn(`/apps/${stack.app}`);
    await page.waitForSelector("#deploy");

    await page.setInputFiles('#deploy input[type="file"]', path.join(dir, "app.py"));
    await page.click("#deploy button");
    await page.waitForFunction("document.querySelector('#deploy-error')?.textContent.includes('.tar.gz')");

    await page.setInputFiles('#deploy input[type="file"]', packed.file);
    await page.click("#deploy button");
    await page.waitForFunction("location.hash.startsWith('#/builds/')");
    await page.waitForFunction("document.querySelector('#status')?.textContent === 'succeeded'", undefined, { timeout: 90_000 });
    await eventually(async () => ((await fetch(stack.instanceUrls[0]!).then((r) => r.text(), () => "")) === "from-page" ? true : undefined), 60_000, "from-page serving");
    await page.close();
  }, 180_000);

  it("fits a 390 px wide screen, follows the dark colour scheme and titles each page", async () => {
    const page = await signedIn("/", { width: 390, height: 844 });
    await page.waitForSelector(`a[href="#/apps/${stack.app}"]`);
    expect(await page.title()).toBe("Apps · Slipway");
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await mkdir(path.join(root, "test-artifacts"), { recursive: true });
    await page.screenshot({ path: path.join(root, "test-artifacts", "dashboard-390.png"), fullPage: true });

    await page.goto(`${stack.apiUrl}/#/apps/${stack.app}`);
    await page.waitForSelector("#releases tbody tr");
    expect(await page.title()).toBe(`${stack.app} · Slipway`);
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(root, "test-artifacts", "dashboard-app-390.png"), fullPage: true });

    const background = () => page.evaluate("getComputedStyle(document.documentElement).backgroundColor");
    await page.emulateMedia({ colorScheme: "light" });
    const light = await background();
    await page.emulateMedia({ colorScheme: "dark" });
    expect(await background()).not.toBe(light);
    await page.close();
  }, 60_000);
});
