import http from "node:http";

export class CaddyAdminError extends Error {
  override name = "CaddyAdminError";
}

/**
 * Caddy's admin API, over its unix socket (`unix//path`) or HTTP. Over a unix socket Caddy wants
 * an empty Host header: anything else is refused as "host not allowed".
 */
export class CaddyAdmin {
  private readonly target: { socketPath: string } | { host: string; port: number };
  private readonly hostHeader: string;

  constructor(endpoint: string, private readonly timeoutMs = 10_000) {
    if (endpoint.startsWith("unix//")) {
      this.target = { socketPath: endpoint.slice("unix/".length) };
      this.hostHeader = "";
    } else {
      const url = new URL(endpoint);
      this.target = { host: url.hostname, port: Number(url.port || 80) };
      this.hostHeader = url.host;
    }
  }

  /** Replaces Caddy's whole configuration at once (Caddy keeps the old one if the new fails). */
  async load(config: unknown): Promise<void> {
    const answer = await this.request("POST", "/load", JSON.stringify(config));
    if (answer.status !== 200) throw new CaddyAdminError(`Caddy refused the configuration (${answer.status}): ${answer.body.slice(0, 500)}`);
  }

  /** The running configuration, or one of its parts (`path` under /config/). */
  async config(path = ""): Promise<unknown> {
    const answer = await this.request("GET", `/config/${path}`);
    if (answer.status !== 200) throw new CaddyAdminError(`Caddy's configuration could not be read (${answer.status}): ${answer.body.slice(0, 200)}`);
    return JSON.parse(answer.body || "null");
  }

  /** Caddy's own Prometheus metrics (its admin endpoint serves them). */
  async metrics(): Promise<string> {
    const answer = await this.request("GET", "/metrics");
    if (answer.status !== 200) throw new CaddyAdminError(`Caddy's metrics could not be read (${answer.status}): ${answer.body.slice(0, 200)}`);
    return answer.body;
  }

  /** Whether the running configuration holds an object with this `@id`. */
  async has(id: string): Promise<boolean> {
    const answer = await this.request("GET", `/id/${encodeURIComponent(id)}`);
    return answer.status === 200;
  }

  private request(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          ...this.target,
          method,
          path,
          setHost: false,
          timeout: this.timeoutMs,
          headers: { Host: this.hostHeader, ...(body === undefined ? {} : { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) }) },
        },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on("data", (chunk: Buffer) => chunks.push(chunk));
          answer.on("end", () => resolve({ status: answer.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          answer.on("error", reject);
        },
      );
      request.on("timeout", () => request.destroy(new CaddyAdminError(`Caddy's admin endpoint did not answer ${method} ${path} within ${this.timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }
}
