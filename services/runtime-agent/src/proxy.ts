import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The instance's public port. It forwards every request to the current app process's private
 * port, so a new release can start beside the old one and take over without a refused
 * connection. Counts requests in flight per upstream so the old process is stopped only once
 * drained.
 */
export class InstanceProxy {
  private upstream: number | undefined;
  private upstreamHost = "127.0.0.1";
  private readonly inFlight = new Map<number, number>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly server: http.Server;

  constructor() {
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  listen(port: number, host = "0.0.0.0"): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve((this.server.address() as AddressInfo).port));
    });
  }

  /** The port it listens on, once it does. */
  get port(): number | undefined {
    return (this.server.address() as AddressInfo | null)?.port;
  }

  /** `host`: where the app's port is (its own network's address, or this host's loopback). */
  setUpstream(port: number | undefined, host = "127.0.0.1"): void {
    this.upstream = port;
    this.upstreamHost = host;
  }

  /** Resolves when no request to `port` is in flight, or after `timeoutMs`. */
  async drain(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.inFlight.get(port) ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  /** Stops taking connections, lets requests in flight finish (up to `graceMs`), then closes. */
  async close(graceMs = 0): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.totalInFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.server.closeAllConnections();
    this.agent.destroy();
    await closed;
  }

  private totalInFlight(): number {
    let total = 0;
    for (const count of this.inFlight.values()) total += count;
    return total;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse) {
    const port = this.upstream;
    const host = this.upstreamHost;
    if (port === undefined) {
      res.writeHead(503, { "Content-Type": "application/json", "Retry-After": "2" });
      res.end(JSON.stringify({ error: { code: "no_release", message: "no release of this app is running on this instance yet" } }));
      return;
    }
    this.inFlight.set(port, (this.inFlight.get(port) ?? 0) + 1);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.inFlight.set(port, (this.inFlight.get(port) ?? 1) - 1);
    };
    res.once("close", finish);
    const upstream = http.request(
      { host, port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders as unknown as http.OutgoingHttpHeaders);
        answer.pipe(res);
      },
    );
    upstream.on("error", (error) => {
      if (!res.headersSent) {
        res.writeHead(502, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: "bad_gateway", message: `the app did not answer: ${error.message}` } }));
      } else {
        res.destroy();
      }
    });
    req.pipe(upstream);
  }
}
