import type { AppResponse as App, BuildResponse as Build, InstanceResponse as Instance, ReleaseResponse as Release } from "@slipway/shared/contracts";
import { api, sendJson } from "./api";
import { ago, badge, byId, duration, esc, showError, syncRows, tableHtml } from "./dom";
import { configPanel } from "./config-panel";
import { deployPanel } from "./deploy-panel";
import { logPanel } from "./log-panel";
import type { View } from "./view";

/** One app: deploy, instances, live log, config, releases with rollback, builds. */
export async function appView(view: HTMLElement, app: string): Promise<View> {
  view.innerHTML = `
    <h1>${esc(app)}</h1>
    <p id="app-url"></p>
    <h2>Deploy</h2><section id="deploy-panel"></section>
    <h2>Instances</h2>
    <form id="scale-form" class="scale"><label>Instances <input id="scale-input" type="number" min="0" max="100" required aria-label="Instances to run"></label>
      <button type="submit">Scale</button> <span id="scale-status" role="status"></span></form>
    <p id="scale-error" class="error" role="alert"></p>
    ${tableHtml("instances", "Instances", ["Instance", "State", "Release", "Host", "Address", "Last heartbeat", "Error"])}
    <h2>Log</h2><section id="app-log-panel"></section>
    <h2>Config</h2><section id="config-panel"></section>
    <h2>Releases</h2><p id="rollback-error" class="error" role="alert"></p>${tableHtml("releases", "Releases", ["Version", "Build", "Reason", "State", "Created", "Action"])}
    <h2>Builds</h2>${tableHtml("builds", "Builds", ["Build", "Status", "Release", "Duration", "Created"])}`;
  deployPanel(app, byId("deploy-panel"));
  const config = configPanel(app, byId("config-panel"));
  const log = logPanel(app, byId("app-log-panel"));
  const refresh = async () => {
    const [detail, builds, releases, instances] = await Promise.all([
      api<App>(`/v1/apps/${app}`),
      api<Build[]>(`/v1/apps/${app}/builds?limit=20`),
      api<Release[]>(`/v1/apps/${app}/releases?limit=20`),
      api<Instance[]>(`/v1/apps/${app}/instances`),
    ]);
    const current = releases[0]?.version;
    const url = byId("app-url");
    if (detail.url && url.dataset.url !== detail.url) {
      url.dataset.url = detail.url;
      url.innerHTML = `<a href="${esc(detail.url)}" target="_blank" rel="noopener">${esc(detail.url)}</a>`;
    }
    syncRows(
      byId<HTMLTableElement>("instances").tBodies[0]!,
      instances.map((i) => ({
        key: i.instanceId,
        cells: [
          esc(i.instanceId),
          badge("state", i.state),
          i.release ? `v${i.release}` : "-",
          esc(i.host ?? "-"),
          i.address ? esc(`${i.address}:${i.port}`) : "-",
          ago(i.lastHeartbeatAt),
          esc(i.error?.split("\n")[0] ?? ""),
        ],
      })),
      "data-instance",
      [undefined, undefined, { "data-release": "" }, undefined, undefined, { "data-heartbeat": "" }, { class: "error" }],
    );
    showScale(detail);
    syncRows(
      byId<HTMLTableElement>("releases").tBodies[0]!,
      releases.map((r) => ({
        key: String(r.version),
        cells: [
          `v${r.version}`,
          `<a href="#/builds/${esc(r.buildId)}">${esc(r.buildId.slice(0, 8))}</a>`,
          esc(r.reason),
          badge("state", r.state),
          ago(r.createdAt),
          r.version === current ? "current" : `<button data-rollback="${r.version}">Roll back to v${r.version}</button>`,
        ],
      })),
      "data-version",
    );
    syncRows(
      byId<HTMLTableElement>("builds").tBodies[0]!,
      builds.map((b) => ({
        key: b.id,
        cells: [`<a href="#/builds/${esc(b.id)}">${esc(b.id.slice(0, 8))}</a>`, badge("status", b.status), b.release ? `v${b.release}` : "", duration(b), ago(b.createdAt)],
      })),
      "data-build",
    );
    config.refresh(detail.env);
    log.refresh(instances.map((i) => i.instanceId));
  };
  const scaleInput = byId<HTMLInputElement>("scale-input");
  const scaleStatus = byId("scale-status");
  const showScale = (detail: Pick<App, "instances" | "placed">) => {
    if (detail.instances === undefined) return;
    // The field keeps what the user is typing; it follows the server only while not focused.
    if (document.activeElement !== scaleInput) scaleInput.value = String(detail.instances);
    const short = (detail.placed ?? 0) < detail.instances ? `: only ${detail.placed ?? 0} could be placed, the hosts have no room for more` : "";
    scaleStatus.textContent = `${detail.instances} asked for, ${detail.placed ?? 0} placed${short}`;
  };
  byId("scale-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(byId("scale-error"), undefined);
    try {
      const scale = await api<{ instances: number; placed: number }>(`/v1/apps/${app}/scale`, sendJson("PUT", { instances: Number(scaleInput.value) }));
      scaleInput.blur();
      showScale(scale);
      await refresh();
    } catch (error) {
      showError(byId("scale-error"), error);
    }
  });
  const rollbackError = byId("rollback-error");
  // One listener on the table: its rows are rewritten in place, their buttons come and go.
  byId("releases").addEventListener("click", async (event) => {
    const button = (event.target as HTMLElement).closest<HTMLButtonElement>("button[data-rollback]");
    if (!button) return;
    const version = Number(button.dataset.rollback);
    if (!window.confirm(`Roll ${app} back to release v${version}? Every instance switches to that release's build.`)) return;
    button.disabled = true;
    showError(rollbackError, undefined);
    try {
      await api<Release>(`/v1/apps/${app}/releases`, sendJson("POST", { version }));
      await refresh();
    } catch (error) {
      showError(rollbackError, error);
      button.disabled = false;
    }
  });
  await refresh();
  return { title: `${app} · Slipway`, refresh, stop: () => log.stop() };
}
