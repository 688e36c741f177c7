/**
 * Slipway's dashboard: apps, builds with live logs, releases with rollback, instances. Plain
 * TypeScript over the REST API; bundled by the API at start and served as /dashboard.js.
 */
import type { AppResponse as App, BuildResponse as Build, InstanceResponse as Instance, ReleaseResponse as Release } from "@slipway/shared/contracts";

const view = document.getElementById("view")!;
const where = document.getElementById("where")!;
const TOKEN_KEY = "slipway-token";

class Unauthorized extends Error {}

function headers(): Record<string, string> {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(path, { ...init, headers: { ...headers(), ...(init.headers as Record<string, string>) } });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json();
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body as T;
}

const esc = (value: unknown) =>
  String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const badge = (kind: string, value: string | undefined) => (value ? `<span class="${kind}-${esc(value)}">${esc(value)}</span>` : "");
const ago = (iso?: string) => (iso ? `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))}s ago` : "");
const duration = (b: { startedAt?: string; finishedAt?: string }) =>
  b.startedAt && b.finishedAt ? `${((Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000).toFixed(1)}s` : "";


let refresh: number | undefined;
let stopLog: (() => void) | undefined;

async function appsView() {
  where.textContent = "apps";
  const apps = await api<App[]>("/v1/apps?limit=100");
  const rows = await Promise.all(
    apps.map(async (app) => {
      const [detail, instances] = await Promise.all([api<App>(`/v1/apps/${app.name}`), api<Instance[]>(`/v1/apps/${app.name}/instances`)]);
      const running = instances.filter((i) => i.state === "running").length;
      return `<tr><td><a href="#/apps/${esc(app.name)}">${esc(app.name)}</a></td><td>${detail.currentRelease ? `v${detail.currentRelease}` : "-"}</td><td data-health>${running}/${instances.length} running</td></tr>`;
    }),
  );
  view.innerHTML = `<h1>Apps</h1><table><thead><tr><th>App</th><th>Current release</th><th>Instances</th></tr></thead><tbody>${rows.join("") || '<tr><td colspan="3">No apps yet: deploy one with <code>slipway deploy</code>.</td></tr>'}</tbody></table>`;
}

async function appView(app: string) {
  where.textContent = app;
  const [builds, releases, instances] = await Promise.all([
    api<Build[]>(`/v1/apps/${app}/builds?limit=20`),
    api<Release[]>(`/v1/apps/${app}/releases?limit=20`),
    api<Instance[]>(`/v1/apps/${app}/instances`),
  ]);
  const current = releases[0]?.version;
  view.innerHTML = `
    <h1>${esc(app)}</h1>
    <h2>Instances</h2>
    <table id="instances"><thead><tr><th>Instance</th><th>State</th><th>Release</th><th>Last heartbeat</th><th>Error</th></tr></thead><tbody>
      ${instances.map((i) => `<tr data-instance="${esc(i.instanceId)}"><td>${esc(i.instanceId)}</td><td>${badge("state", i.state)}</td><td data-release>${i.release ? `v${i.release}` : "-"}</td><td>${ago(i.lastHeartbeatAt)}</td><td class="error">${esc(i.error?.split("\n")[0] ?? "")}</td></tr>`).join("")}
    </tbody></table>
    <h2>Releases</h2>
    <table id="releases"><thead><tr><th>Version</th><th>Build</th><th>Reason</th><th>State</th><th>Created</th><th></th></tr></thead><tbody>
      ${releases
        .map(
          (r) => `<tr data-version="${r.version}"><td>v${r.version}</td><td><a href="#/builds/${esc(r.buildId)}">${esc(r.buildId.slice(0, 8))}</a></td><td>${esc(r.reason)}</td><td>${badge("state", r.state)}</td><td>${ago(r.createdAt)}</td>
          <td>${r.version === current ? "current" : `<button data-rollback="${r.version}">Roll back to v${r.version}</button>`}</td></tr>`,
        )
        .join("")}
    </tbody></table>
    <h2>Builds</h2>
    <table id="builds"><thead><tr><th>Build</th><th>Status</th><th>Release</th><th>Duration</th><th>Created</th></tr></thead><tbody>
      ${builds.map((b) => `<tr><td><a href="#/builds/${esc(b.id)}">${esc(b.id.slice(0, 8))}</a></td><td>${badge("status", b.status)}</td><td>${b.release ? `v${b.release}` : ""}</td><td>${duration(b)}</td><td>${ago(b.createdAt)}</td></tr>`).join("")}
    </tbody></table>`;
  for (const button of view.querySelectorAll<HTMLButtonElement>("button[data-rollback]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const release = await api<Release>(`/v1/apps/${app}/releases`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ version: Number(button.dataset.rollback) }),
      });
      button.textContent = `rolled back: v${release.version}`;
      await appView(app);
    });
  }
}

async function buildView(id: string) {
  const build = await api<Build>(`/v1/builds/${id}`);
  where.textContent = `${build.app} / build ${id.slice(0, 8)}`;
  view.innerHTML = `<h1>Build ${esc(id.slice(0, 8))} of <a href="#/apps/${esc(build.app)}">${esc(build.app)}</a></h1>
    <p>Status: <span id="status">${badge("status", build.status)}</span> <span id="release">${build.release ? `release v${build.release}` : ""}</span></p>
    <pre id="log"></pre>`;
  const log = document.getElementById("log")!;
  const controller = new AbortController();
  stopLog = () => controller.abort();
  const response = await fetch(`/v1/builds/${id}/logs`, { headers: { ...headers(), Accept: "text/event-stream" }, signal: controller.signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      if (event.startsWith("data: ")) {
        log.textContent += `${event.slice(6)}\n`;
        log.scrollTop = log.scrollHeight;
      }
    }
  }
  const final = await api<Build>(`/v1/builds/${id}`);
  document.getElementById("status")!.innerHTML = badge("status", final.status);
  document.getElementById("release")!.textContent = final.release ? `release v${final.release}` : final.error ?? "";
}

function askForToken() {
  where.textContent = "sign in";
  view.innerHTML = `<form class="token"><p>This Slipway API needs its token.</p><input type="password" name="token" placeholder="API token" autofocus /> <button>Use token</button></form>`;
  view.querySelector("form")!.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, (view.querySelector("input") as HTMLInputElement).value);
    void route();
  });
}

async function route() {
  window.clearInterval(refresh);
  stopLog?.();
  const hash = location.hash.replace(/^#/, "") || "/";
  const render = async () => {
    const app = /^\/apps\/([^/]+)$/.exec(hash);
    const build = /^\/builds\/([^/]+)$/.exec(hash);
    if (app) await appView(decodeURIComponent(app[1]!));
    else if (build) await buildView(decodeURIComponent(build[1]!));
    else await appsView();
  };
  try {
    await render();
    // Lists refresh themselves; a build page follows its own log.
    if (!hash.startsWith("/builds/")) refresh = window.setInterval(() => void render().catch(() => undefined), 2000);
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    else view.innerHTML = `<p class="error">${esc((error as Error).message)}</p>`;
  }
}

window.addEventListener("hashchange", () => void route());
void route();
