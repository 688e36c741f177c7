import type { ApiClient } from "../client";

/** Streams a build's log (Server-Sent Events) to `onLine` until the build ends; answers its status. */
export async function followLog(client: ApiClient, buildId: string, onLine: (line: string) => void): Promise<string> {
  const response = await client.request("GET", `/v1/builds/${buildId}/logs`, { accept: "text/event-stream" });
  const decoder = new TextDecoder();
  let buffer = "";
  let status = "unknown";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (event.startsWith("event: end")) status = data;
      else if (event.startsWith("data: ")) onLine(data);
    }
  }
  return status;
}
