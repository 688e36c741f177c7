import type { AppResponse as App } from "@slipway/shared/contracts";
import { api, sendJson } from "./api";
import { esc, showError, syncRows, tableHtml } from "./dom";

/** What the API shows instead of a secret-looking value unless asked to reveal it. */
const MASK = "••••";

/**
 * An app's env: each variable with a field for a new value and an unset button, plus a form to add
 * one. A masked value is never sent back: changing a secret means typing its new value.
 */
export function configPanel(app: string, section: HTMLElement): { refresh(env: Record<string, string>): void } {
  section.innerHTML = `${tableHtml("config", "Environment variables", ["Name", "Value", "New value", "Action"])}
    <form id="config-add" class="inline">
      <input name="name" aria-label="New variable name" placeholder="NAME" required pattern="[A-Za-z_][A-Za-z0-9_]*" autocomplete="off" />
      <input name="value" aria-label="New variable value" placeholder="value" autocomplete="off" />
      <button>Add</button>
    </form>
    <p id="config-error" class="error" role="alert"></p>`;
  const table = section.querySelector<HTMLTableElement>("#config")!;
  const addForm = section.querySelector<HTMLFormElement>("#config-add")!;
  const errorLine = section.querySelector<HTMLElement>("#config-error")!;
  let current: Record<string, string> = {};

  const patch = async (body: { set?: Record<string, string>; unset?: string[] }) => {
    showError(errorLine, undefined);
    try {
      const updated = await api<App>(`/v1/apps/${app}/config`, sendJson("PATCH", body));
      render(updated.env);
      return true;
    } catch (error) {
      showError(errorLine, error);
      return false;
    }
  };

  const render = (env: Record<string, string>) => {
    current = env;
    const rows = Object.keys(env)
      .sort()
      .map((name) => {
        const value = env[name]!;
        const masked = value === MASK;
        const field = `<input data-value-of="${esc(name)}" aria-label="New value for ${esc(name)}" autocomplete="off" ${masked ? 'placeholder="type a new value" type="password"' : `value="${esc(value)}"`} />`;
        const buttons = `<button data-save="${esc(name)}" aria-label="Save ${esc(name)}">Save</button> <button data-unset="${esc(name)}" aria-label="Unset ${esc(name)}">Unset</button>`;
        return { key: name, cells: [`<code>${esc(name)}</code>`, masked ? `<span title="secret: hidden">${MASK}</span>` : esc(value), field, buttons] };
      });
    syncRows(table.tBodies[0]!, rows, "data-env", [undefined, { "data-env-value": "" }]);
  };

  table.addEventListener("click", async (event) => {
    const target = event.target as HTMLElement;
    const save = target.closest<HTMLButtonElement>("button[data-save]");
    const unset = target.closest<HTMLButtonElement>("button[data-unset]");
    if (unset) {
      await patch({ unset: [unset.dataset.unset!] });
    } else if (save) {
      const name = save.dataset.save!;
      const field = table.querySelector<HTMLInputElement>(`input[data-value-of="${CSS.escape(name)}"]`)!;
      if (current[name] === MASK && field.value === "") return showError(errorLine, `${name} is a secret: type its new value to change it`);
      if (await patch({ set: { [name]: field.value } })) field.value = current[name] === MASK ? "" : field.value;
    }
  });
  const addButton = addForm.querySelector<HTMLButtonElement>("button")!;
  const addField = (name: string) => addForm.querySelector<HTMLInputElement>(`input[name="${name}"]`)!;
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [name, value] = [addField("name").value, addField("value").value];
    // One at a time; what is typed for the next variable while this one is saved is kept.
    addButton.disabled = true;
    try {
      if ((await patch({ set: { [name]: value } })) && addField("name").value === name && addField("value").value === value) addForm.reset();
    } finally {
      addButton.disabled = false;
    }
  });
  return { refresh: render };
}
