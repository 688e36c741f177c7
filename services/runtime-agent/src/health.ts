import http from "node:http";
import type { AppProcess } from "./app-process";

export class HealthCheckError extends Error {
  override name = "HealthCheckError";
}

function probe(port: number, healthPath: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const request = http.get({ host: "127.0.0.1", port, path: healthPath, timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve(undefined));
  });
}

/**
 * Resolves once the app answers `healthPath` with 2xx or 3xx; rejects if the process exits first
 * or `timeoutMs` passes, with a one-line reason a user can act on, ending with what the app printed.
 */
export async function waitUntilHealthy(app: AppProcess, port: number, healthPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastStatus: number | undefined;
  while (Date.now() < deadline) {
    if (!app.running) {
      const exit = await app.exited;
      throw new HealthCheckError(`the app exited (${exit.limitReason ?? exit.signal ?? `code ${exit.code}`}) before answering on $PORT (${port}); ${printedNote(app)}`);
    }
    lastStatus = await probe(port, healthPath);
    if (lastStatus !== undefined && lastStatus >= 200 && lastStatus < 400) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  const seconds = Math.round(timeoutMs / 1000);
  if (lastStatus === undefined) {
    throw new HealthCheckError(`the app did not listen on $PORT (${port}) within ${seconds} s${otherPortHint(app, port)}; ${printedNote(app)}`);
  }
  throw new HealthCheckError(`the app answered ${lastStatus} on ${healthPath} (HEALTH_PATH wants 2xx or 3xx) for ${seconds} s; ${printedNote(app)}`);
}

/** At most this much of the app's output goes into a reason. */
const PRINTED_CHARS = 600;

/** The app's last output lines, on one line: `it printed: a | b | c`. */
export function printedNote(app: AppProcess, lines = 6): string {
  const printed = app
    .tail(lines)
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .join(" | ");
  if (!printed) return "it printed nothing";
  return `it printed: ${printed.length > PRINTED_CHARS ? `…${printed.slice(-PRINTED_CHARS)}` : printed}`;
}

/** `(it seems to listen on 8000 instead)` when the app announced a URL on another port. */
function otherPortHint(app: AppProcess, port: number): string {
  const announced = [...app.tail(40).matchAll(/https?:\/\/[\w.[\]:-]*?:(\d{2,5})\b/g)].map((m) => Number(m[1])).filter((p) => p !== port);
  return announced.length ? ` (it seems to listen on ${announced.at(-1)} instead: bind to $PORT)` : "";
}
