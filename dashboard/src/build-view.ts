import type { BuildResponse as Build } from "@slipway/shared/contracts";
import { api, followEvents } from "./api";
import { badge, byId, esc } from "./dom";
import type { View } from "./view";

/** One build, following its log live until the build ends. */
export async function buildView(view: HTMLElement, id: string): Promise<View> {
  const build = await api<Build>(`/v1/builds/${id}`);
  view.innerHTML = `<h1>Build ${esc(id.slice(0, 8))} of <a href="#/apps/${esc(build.app)}">${esc(build.app)}</a></h1>
    <p>Status: <span id="status">${badge("status", build.status)}</span> <span id="release">${build.release ? `release v${build.release}` : ""}</span></p>
    <pre id="log" class="log" tabindex="0" aria-label="Build log"></pre>`;
  const log = byId("log");
  const controller = new AbortController();
  void (async () => {
    await followEvents(`/v1/builds/${id}/logs`, controller.signal, ({ data }) => {
      log.textContent += `${data}\n`;
      log.scrollTop = log.scrollHeight;
    }).catch(() => undefined);
    if (controller.signal.aborted) return;
    const final = await api<Build>(`/v1/builds/${id}`);
    byId("status").innerHTML = badge("status", final.status);
    byId("release").textContent = final.release ? `release v${final.release}` : (final.error ?? "");
  })();
  return { title: `Build ${id.slice(0, 8)} of ${build.app} · Slipway`, where: `${build.app} / build ${id.slice(0, 8)}`, stop: () => controller.abort() };
}
