/**
 * Slipway's dashboard: apps, builds with live logs, an app's instances, live log, config and
 * releases with rollback. Plain TypeScript over the REST API, bundled at build time and served as
 * /dashboard.js. Pages are built once and then updated in place, so focus and scroll survive refreshes.
 */
import { TOKEN_KEY, Unauthorized } from "./api";
import { appView } from "./app-view";
import { appsView } from "./apps-view";
import { buildView } from "./build-view";
import { esc } from "./dom";
import type { View } from "./view";

const REFRESH_MS = 2000;
const view = document.getElementById("view")!;
const where = document.getElementById("where")!;

let current: View | undefined;
let refreshTimer: number | undefined;
// A route change bumps this, so a page still loading for an old route does not take over.
let generation = 0;

function askForToken() {
  where.textContent = "sign in";
  document.title = "Sign in · Slipway";
  view.innerHTML = `<form class="token"><p>This Slipway API needs its token.</p>
    <label>API token <input type="password" name="token" placeholder="API token" autofocus /></label> <button>Use token</button></form>`;
  view.querySelector("form")!.addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, (view.querySelector("input") as HTMLInputElement).value);
    void route();
  });
}

function showFailure(error: unknown) {
  if (error instanceof Unauthorized) askForToken();
  else view.innerHTML = `<p class="error" role="alert">${esc((error as Error).message)}</p>`;
}

async function route() {
  const mine = ++generation;
  window.clearTimeout(refreshTimer);
  current?.stop?.();
  current = undefined;
  const hash = location.hash.replace(/^#/, "") || "/";
  const app = /^\/apps\/([^/]+)$/.exec(hash);
  const build = /^\/builds\/([^/]+)$/.exec(hash);
  where.textContent = app ? decodeURIComponent(app[1]!) : build ? "build" : "apps";
  try {
    const next = app ? await appView(view, decodeURIComponent(app[1]!)) : build ? await buildView(view, decodeURIComponent(build[1]!)) : await appsView(view);
    if (mine !== generation) return next.stop?.();
    current = next;
    document.title = next.title;
    if (next.where) where.textContent = next.where;
    scheduleRefresh(mine);
  } catch (error) {
    if (mine === generation) showFailure(error);
  }
}

/** One refresh at a time: the next is scheduled only after the last finished, however slow the API. */
function scheduleRefresh(mine: number) {
  if (!current?.refresh) return;
  refreshTimer = window.setTimeout(async () => {
    try {
      await current?.refresh?.();
    } catch (error) {
      if (error instanceof Unauthorized && mine === generation) return askForToken();
      // A failed refresh keeps the page as it was; the next one may succeed.
    }
    if (mine === generation) scheduleRefresh(mine);
  }, REFRESH_MS);
}

window.addEventListener("hashchange", () => void route());
void route();
