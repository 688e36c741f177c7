/** The dashboard's way to the REST API: the token from sign-in on every request, API errors as messages. */

export const TOKEN_KEY = "slipway-token";

export class Unauthorized extends Error {}

export function authHeaders(): Record<string, string> {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** JSON in and out; a failed call throws the API's own error message, which the page shows as is. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  return body as T;
}

export const sendJson = (method: string, body: unknown): RequestInit => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

export interface ServerEvent {
  id?: string;
  data: string;
}

/**
 * Reads a Server-Sent Events stream through fetch rather than EventSource, which cannot send the
 * Authorization header. Resolves when the server ends the stream or `signal` aborts.
 */
export async function followEvents(path: string, signal: AbortSignal, onEvent: (event: ServerEvent) => void, extraHeaders: Record<string, string> = {}): Promise<void> {
  const response = await fetch(path, { headers: { ...authHeaders(), ...extraHeaders, Accept: "text/event-stream" }, signal });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const event: ServerEvent = { data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("id: ")) event.id = line.slice(4);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent({ ...event, data: data.join("\n") });
    }
  }
}
