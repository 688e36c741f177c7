import http from "node:http";
import type { AppProcess } from "./supervisor";

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
 * or `timeoutMs` passes, with the app's last output in the message.
 */
export async function waitUntilHealthy(app: AppProcess, port: number, healthPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastStatus: number | undefined;
  while (Date.now() < deadline) {
    if (!app.running) {
      const exit = await app.exited;
      throw new HealthCheckError(`the app exited (${exit.signal ?? `code ${exit.code}`}) before answering ${healthPath}${tailNote(app)}`);
    }
    lastStatus = await probe(port, healthPath);
    if (lastStatus !== undefined && lastStatus >= 200 && lastStatus < 400) return;
    await new Promise((r) => setTimeout(r, 150));
  }
  const seen = lastStatus === undefined ? "no answer" : `last status ${lastStatus}`;
  throw new HealthCheckError(`the app did not pass its health check on ${healthPath} within ${timeoutMs / 1000} s (${seen})${tailNote(app)}`);
}

const tailNote = (app: AppProcess) => {
  const tail = app.tail();
  return tail ? `; its last output:\n${tail}` : "";
};
