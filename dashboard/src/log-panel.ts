import { followEvents, type ServerEvent } from "./api";
import { esc, setHtml } from "./dom";

/** Older lines are dropped past this many, so a chatty app cannot grow the page without bound. */
const MAX_LINES = 2000;
/** How long to wait before following again when the stream ends without being asked to. */
const RECONNECT_MS = 2000;

interface AppLogLine {
  time: string;
  instanceId: string;
  stream: string;
  line: string;
}

/**
 * An app's log followed live, all instances or one. Follows over fetch like the build log (the
 * API wants the token in a header) and resumes after a dropped connection from the last line seen.
 */
export function logPanel(app: string, section: HTMLElement): { refresh(instanceIds: string[]): void; stop(): void } {
  section.innerHTML = `<label>Instance <select id="log-instance" aria-label="Show the log of"><option value="">all instances</option></select></label>
    <pre id="app-log" class="log" tabindex="0" aria-label="App log" aria-live="off"></pre>`;
  const select = section.querySelector<HTMLSelectElement>("#log-instance")!;
  const log = section.querySelector<HTMLElement>("#app-log")!;
  let controller = new AbortController();

  const append = ({ data }: ServerEvent) => {
    const entry = JSON.parse(data) as AppLogLine;
    // Stay at the bottom only if the reader was there: someone scrolled up to read keeps their place.
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(`${entry.time} ${entry.instanceId} ${entry.stream}: ${entry.line}\n`);
    while (log.childNodes.length > MAX_LINES) log.firstChild!.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  };

  const follow = async (signal: AbortSignal) => {
    let lastId: string | undefined;
    const instance = select.value;
    const query = new URLSearchParams({ limit: "200", ...(instance ? { instance } : {}) });
    while (!signal.aborted) {
      await followEvents(
        `/v1/apps/${encodeURIComponent(app)}/logs?${query}`,
        signal,
        (event) => {
          lastId = event.id ?? lastId;
          append(event);
        },
        lastId ? { "Last-Event-ID": lastId } : {},
      ).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  };

  const restart = () => {
    controller.abort();
    controller = new AbortController();
    log.textContent = "";
    void follow(controller.signal);
  };
  select.addEventListener("change", restart);
  restart();

  return {
    refresh(instanceIds) {
      const chosen = select.value;
      const ids = [...new Set([...instanceIds, ...(chosen ? [chosen] : [])])].sort();
      setHtml(select, `<option value="">all instances</option>${ids.map((id) => `<option value="${esc(id)}">${esc(id)}</option>`).join("")}`);
      select.value = chosen;
    },
    stop: () => controller.abort(),
  };
}
