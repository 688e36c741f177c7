/** HTML helpers and in-place updates: a refresh rewrites only what changed, so focus and scroll stay put. */

export const esc = (value: unknown) =>
  String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
export const badge = (kind: string, value: string | undefined) => (value ? `<span class="${kind}-${esc(value)}">${esc(value)}</span>` : "");
export const ago = (iso?: string) => (iso ? `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))}s ago` : "");
export const duration = (b: { startedAt?: string; finishedAt?: string }) =>
  b.startedAt && b.finishedAt ? `${((Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000).toFixed(1)}s` : "";

/** A table that scrolls inside its own box on a narrow screen instead of widening the page. */
export const tableHtml = (id: string, label: string, headers: string[]) =>
  `<div class="scroll"><table id="${id}" aria-label="${esc(label)}"><thead><tr>${headers.map((h) => `<th scope="col">${esc(h)}</th>`).join("")}</tr></thead><tbody></tbody></table></div>`;

export const byId = <E extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as E;

// What each element was last given; comparing against innerHTML would not work, browsers normalise it.
const rendered = new WeakMap<Element, string>();

/** Sets an element's HTML only when it differs from last time, so a control inside keeps focus. */
export function setHtml(element: Element, html: string): void {
  if (rendered.get(element) === html) return;
  rendered.set(element, html);
  element.innerHTML = html;
}

export interface Row {
  key: string;
  cells: string[];
}

/**
 * Brings a table body to `rows` keyed by `keyAttribute`: new rows are added, gone ones removed,
 * misplaced ones moved, and only cells whose HTML changed are rewritten. `cellAttributes` are set
 * on each new row's cells (test hooks and styling such as `data-release`).
 */
export function syncRows(body: HTMLTableSectionElement, rows: Row[], keyAttribute: string, cellAttributes: (Record<string, string> | undefined)[] = []): void {
  const existing = new Map<string, HTMLTableRowElement>();
  for (const tr of Array.from(body.rows)) existing.set(tr.getAttribute(keyAttribute) ?? "", tr);
  const wanted = new Set(rows.map((row) => row.key));
  for (const [key, tr] of existing) if (!wanted.has(key)) tr.remove();
  rows.forEach((row, index) => {
    let tr = existing.get(row.key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.setAttribute(keyAttribute, row.key);
    }
    // Moving a node blurs whatever inside it had focus, so only move rows that are out of place.
    if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] ?? null);
    row.cells.forEach((html, column) => {
      let td = tr.cells[column];
      if (!td) {
        td = tr.insertCell();
        for (const [name, value] of Object.entries(cellAttributes[column] ?? {})) td.setAttribute(name, value);
      }
      setHtml(td, html);
    });
  });
}

/** Shows an error message in a live region, or clears it. */
export function showError(element: HTMLElement, error: unknown): void {
  element.textContent = error ? `Failed: ${error instanceof Error ? error.message : String(error)}` : "";
}
