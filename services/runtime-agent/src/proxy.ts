import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";

/**
 * The instance's public port. It forwards every request to the current app process's private
 * port, so a new release can start beside the old one and take over without a refused
 * connection. Counts requests in flight per upstream so the old process is stopped only once
 * drained. WebSocket upgrades pass (each connection stays with the process it was opened on, and
 * counts as in flight while open); the app sees X-Forwarded-For/-Proto/-Host and X-Request-Id, the
 * front door's when it came through one.
 */
export class InstanceProxy {
  private upstream: number | undefined;
  private upstreamHost = "127.0.0.1";
  private readonly inFlight = new Map<number, number>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private readonly server: http.Server;
  /** Upgraded (WebSocket) connections: the server no longer tracks them, so a close ends them here. */
  private readonly tunnels = new Set<Duplex>();

  constructor() {
    this.server = http.createServer((req, res) => this.forward(req, res));
    this.server.keepAliveTimeout = 5000;
    this.server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.tunnel(req, socket, head));
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
  /** Resolves to the number of requests still in flight when `graceMs` ran out: those were cut. */
  async close(graceMs = 0): Promise<number> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.totalInFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const cut = this.totalInFlight();
    this.server.closeAllConnections();
    for (const socket of this.tunnels) socket.destroy();
    this.agent.destroy();
    await closed;
    return cut;
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
      { host, port, method: req.method, path: req.url, headers: forwardedHeaders(req), agent: this.agent },
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

  /** A WebSocket (or other) upgrade: its own connection to the app, then bytes both ways until either side closes. */
  private tunnel(req: http.IncomingMessage, client: Duplex, head: Buffer) {
    const port = this.upstream;
    const host = this.upstreamHost;
    client.on("error", () => client.destroy());
    if (port === undefined) {
      client.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    this.inFlight.set(port, (this.inFlight.get(port) ?? 0) + 1);
    this.tunnels.add(client);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.tunnels.delete(client);
      this.inFlight.set(port, (this.inFlight.get(port) ?? 1) - 1);
    };
    client.once("close", finish);
    const upstream = http.request({ host, port, method: req.method, path: req.url, headers: forwardedHeaders(req) });
    upstream.on("upgrade", (answer: http.IncomingMessage, app: Socket, appHead: Buffer) => {
      client.write(responseHead(answer));
      if (appHead.length) client.write(appHead);
      if (head.length) app.write(head);
      app.on("error", () => client.destroy());
      app.once("close", () => client.destroy());
      client.once("close", () => app.destroy());
      app.pipe(client).pipe(app);
    });
    // The app answered without upgrading (a 400, a 404): that answer goes back as it is.
    upstream.on("response", (answer) => {
      client.write(responseHead(answer));
      answer.pipe(client);
    });
    upstream.on("error", (error) => {
      client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nthe app did not answer: ${error.message}\n`);
    });
    upstream.end();
  }
}

/** What the app is told about the request's way in: the front door's view when one forwarded it, else this proxy's. */
function forwardedHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = { ...req.headers };
  const remote = req.socket.remoteAddress ?? "";
  const prior = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = prior ? `${String(prior)}, ${remote}` : remote;
  headers["x-forwarded-proto"] ??= "http";
  headers["x-forwarded-host"] ??= req.headers.host ?? "";
  headers["x-request-id"] ??= randomUUID();
  return headers;
}

function responseHead(answer: http.IncomingMessage): string {
  let head = `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ""}\r\n`;
  for (let i = 0; i < answer.rawHeaders.length; i += 2) head += `${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}
