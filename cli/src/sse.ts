export interface ServerSentEvent {
  event?: string;
  id?: string;
  data: string;
}

/** The events of a `text/event-stream` response as they arrive; comments (keep-alives) are skipped. */
export async function* serverSentEvents(response: Response): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let boundary: number;
    while ((boundary = buffer.indexOf("\n\n")) !== -1) {
      const fields = buffer.slice(0, boundary).split("\n");
      buffer = buffer.slice(boundary + 2);
      const value = (name: string) => fields.find((field) => field.startsWith(`${name}: `))?.slice(name.length + 2);
      const data = fields.filter((field) => field.startsWith("data: ")).map((field) => field.slice(6));
      if (data.length === 0) continue;
      const event = value("event");
      const id = value("id");
      yield { data: data.join("\n"), ...(event ? { event } : {}), ...(id ? { id } : {}) };
    }
  }
}
