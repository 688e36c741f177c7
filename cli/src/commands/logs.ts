import type { ApiClient } from "../client";
import { serverSentEvents } from "../sse";

/** Streams a build's log (Server-Sent Events) to `onLine` until the build ends; answers its status. */
export async function followLog(client: ApiClient, buildId: string, onLine: (line: string) => void): Promise<string> {
  const response = await client.request("GET", `/v1/builds/${buildId}/logs`, { accept: "text/event-stream" });
  for await (const event of serverSentEvents(response)) {
    if (event.event === "end") return event.data;
    onLine(event.data);
  }
  return "unknown";
}
