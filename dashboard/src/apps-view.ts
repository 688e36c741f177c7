import type { AppResponse as App, InstanceResponse as Instance } from "@slipway/shared/contracts";
import { api } from "./api";
import { byId, esc, syncRows, tableHtml } from "./dom";
import type { View } from "./view";

/** Every app with its current release and how many of its instances run. */
export async function appsView(view: HTMLElement): Promise<View> {
  view.innerHTML = `<h1>Apps</h1>${tableHtml("apps", "Apps", ["App", "Current release", "Instances"])}
    <p id="no-apps" hidden>No apps yet: deploy one with <code>slipway deploy</code>.</p>`;
  const refresh = async () => {
    const apps = await api<App[]>("/v1/apps?limit=100");
    const rows = await Promise.all(
      apps.map(async (app) => {
        const [detail, instances] = await Promise.all([api<App>(`/v1/apps/${app.name}`), api<Instance[]>(`/v1/apps/${app.name}/instances`)]);
        const running = instances.filter((i) => i.state === "running").length;
        return {
          key: app.name,
          cells: [`<a href="#/apps/${esc(app.name)}">${esc(app.name)}</a>`, detail.currentRelease ? `v${detail.currentRelease}` : "-", `${running}/${instances.length} running`],
        };
      }),
    );
    syncRows(byId<HTMLTableElement>("apps").tBodies[0]!, rows, "data-app", [undefined, undefined, { "data-health": "" }]);
    byId("no-apps").hidden = rows.length > 0;
  };
  await refresh();
  return { title: "Apps · Slipway", refresh };
}
