import type { ApiClient } from "../client";

/** One Server-Sent Event: its name ("message" unless named) and its data lines joined. */
export interface ServerEvent {
  event: string;
  data: string;
}

/** Reads a text/event-stream answer to its end, handing each event to `onEvent`. */
export async function readEvents(response: Response, onEvent: (event: ServerEvent) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, "\n");
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const lines = block.split("\n");
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
      // Comments (keep-alives) and events without data carry nothing to show.
      if (data.length === 0) continue;
      const name = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "message";
      onEvent({ event: name, data: data.join("\n") });
    }
  }
}

/** Streams a build's log to `onLine` until the build ends; answers its status. */
export async function followLog(client: ApiClient, buildId: string, onLine: (line: string) => void): Promise<string> {
  const response = await client.request("GET", `/v1/builds/${encodeURIComponent(buildId)}/logs`, { accept: "text/event-stream" });
  let status = "unknown";
  await readEvents(response, ({ event, data }) => {
    if (event === "end") status = data;
    else onLine(data);
  });
  return status;
}
