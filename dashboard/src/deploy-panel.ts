import type { BuildResponse as Build } from "@slipway/shared/contracts";
import { api } from "./api";
import { showError } from "./dom";

/** The media types the builds endpoint takes, by what an archive's name ends with. */
function archiveType(fileName: string): string | undefined {
  const name = fileName.toLowerCase();
  if (name.endsWith(".zip")) return "application/zip";
  if (name.endsWith(".tar.gz") || name.endsWith(".tgz")) return "application/gzip";
  return undefined;
}

/**
 * Deploys a .zip or .tar.gz of the app's source chosen on the page, as `slipway deploy` uploads
 * one, then opens the new build so its log is followed live.
 */
export function deployPanel(app: string, section: HTMLElement): void {
  section.innerHTML = `<form id="deploy" class="inline">
      <input type="file" name="archive" aria-label="Source archive (.zip or .tar.gz)" accept=".zip,.tar.gz,.tgz" required />
      <button>Deploy</button>
    </form>
    <p id="deploy-error" class="error" role="alert"></p>`;
  const form = section.querySelector<HTMLFormElement>("#deploy")!;
  const errorLine = section.querySelector<HTMLElement>("#deploy-error")!;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorLine, undefined);
    const file = form.querySelector<HTMLInputElement>('input[type="file"]')!.files?.[0];
    const type = file && archiveType(file.name);
    if (!file || !type) return showError(errorLine, "choose a .zip, .tar.gz or .tgz of the app's source");
    const button = form.querySelector("button")!;
    button.disabled = true;
    try {
      const build = await api<Build>(`/v1/apps/${encodeURIComponent(app)}/builds`, { method: "POST", headers: { "Content-Type": type }, body: file });
      location.hash = `#/builds/${build.id}`;
    } catch (error) {
      showError(errorLine, error);
    } finally {
      button.disabled = false;
    }
  });
}
