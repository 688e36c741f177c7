import http from "node:http";
import type { AppProcess } from "./app-process";
import { sleep, throwIfStopping } from "./timeout";

export class HealthCheckError extends Error {
  override name = "HealthCheckError";
}

/** What a new process must answer before it takes traffic. */
export interface HealthCriteria {
  path: string;
  timeoutMs: number;
  /** Text the answer's body must contain; only then is the body read. */
  expectText?: string;
  /**
   * Any HTTP answer counts, whatever its status (App Service's "started"; Heroku and Fly only
   * want the port bound): the default, so an app with no route at the path (a Django URLconf
   * without a root, an API) still goes live. An app's own healthCheck wants 2xx or 3xx.
   */
  anyStatus?: boolean;
  /** Whose setting this is, for the reason: `HEALTH_PATH` or the app's healthCheck. */
  source: string;
}

/** Only this much of a body is searched for the expected text. */
const MAX_BODY_BYTES = 64 * 1024;

interface Answer {
  status: number | undefined;
  /** Whether the body held the expected text (true when none is expected). */
  hasText: boolean;
}

function probe(host: string, port: number, healthPath: string, expectText: string | undefined): Promise<Answer> {
  return new Promise((resolve) => {
    const request = http.get({ host, port, path: healthPath, timeout: 2000 }, (response) => {
      if (expectText === undefined) {
        response.resume();
        return resolve({ status: response.statusCode, hasText: true });
      }
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        if (body.length < MAX_BODY_BYTES) body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode, hasText: body.includes(expectText) }));
      response.on("error", () => resolve({ status: undefined, hasText: false }));
    });
    request.on("timeout", () => request.destroy());
    request.on("error", () => resolve({ status: undefined, hasText: false }));
  });
}

const HEALTH_FIRST_PAUSE_MS = 10;
/** For this long the probes stay HEALTH_FIRST_PAUSE_MS apart: most apps are up within it. */
const HEALTH_QUICK_MS = 1000;
const HEALTH_MAX_PAUSE_MS = 250;

const healthy = (answer: Answer, anyStatus: boolean) => answer.status !== undefined && (anyStatus || (answer.status >= 200 && answer.status < 400)) && answer.hasText;

/**
 * Resolves once the app answers the health path: with any status when `anyStatus`, else 2xx or
 * 3xx (and, when one is expected, a body containing the text); rejects if the process exits first or the timeout passes, with a
 * one-line reason a user can act on, ending with what the app printed; with `AgentStopping` once
 * `signal` aborts.
 */
export async function waitUntilHealthy(app: AppProcess, port: number, criteria: HealthCriteria, signal?: AbortSignal, host = "127.0.0.1"): Promise<void> {
  const { path: healthPath, timeoutMs, expectText, source, anyStatus = false } = criteria;
  const deadline = Date.now() + timeoutMs;
  let last: Answer = { status: undefined, hasText: false };
  // Probes come close together for the first second, then spread out: an app that is up in
  // 90 ms is switched to then, not at the next tick of a growing interval, and a slow one is not
  // asked thousands of times. (A probe of a port nobody listens on yet is one refused connect.)
  const quickUntil = Date.now() + HEALTH_QUICK_MS;
  let pauseMs = HEALTH_FIRST_PAUSE_MS;
  while (Date.now() < deadline) {
    throwIfStopping(signal);
    if (!app.running) {
      const exit = await app.exited;
      throw new HealthCheckError(`the app exited (${exit.limitReason ?? exit.signal ?? `code ${exit.code}`}) before answering on $PORT (${port}); ${printedNote(app)}`);
    }
    last = await probe(host, port, healthPath, expectText);
    if (healthy(last, anyStatus)) return;
    await sleep(pauseMs, signal);
    if (Date.now() >= quickUntil) pauseMs = Math.min(HEALTH_MAX_PAUSE_MS, pauseMs * 1.5);
  }
  throwIfStopping(signal);
  const seconds = Math.round(timeoutMs / 1000);
  if (last.status === undefined) {
    throw new HealthCheckError(`the app did not listen on $PORT (${port}) within ${seconds} s${otherPortHint(app, port)}; ${printedNote(app)}`);
  }
  if (last.status >= 200 && last.status < 400) {
    throw new HealthCheckError(`the app answered ${last.status} on ${healthPath} without the text ${JSON.stringify(expectText)} (${source} expects it) for ${seconds} s; ${printedNote(app)}`);
  }
  throw new HealthCheckError(`the app answered ${last.status} on ${healthPath} (${source} wants 2xx or 3xx) for ${seconds} s; ${printedNote(app)}`);
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
