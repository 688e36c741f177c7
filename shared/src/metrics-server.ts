import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "./log";

/** What a Prometheus scrape reads: a prom-client Registry fits, with anything appended to it. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` on `port` (all interfaces: Prometheus scrapes from elsewhere). A port
 * already taken is logged and left: metrics are never a reason for a service not to run.
 */
export function serveMetrics(source: MetricsSource, port: number, logger: Logger): Promise<MetricsServer | undefined> {
  const server = http.createServer((request, response) => {
    if (request.method !== "GET" || request.url?.split("?")[0] !== "/metrics") {
      response.writeHead(404, { "Content-Type": "application/json" }).end(JSON.stringify({ error: { code: "not_found", message: "only GET /metrics is served here" } }));
      return;
    }
    source.metrics().then(
      (text) => response.writeHead(200, { "Content-Type": source.contentType }).end(text),
      (error: unknown) => {
        logger.error({ err: error }, "could not collect metrics");
        response.writeHead(500, { "Content-Type": "application/json" }).end(JSON.stringify({ error: { code: "internal", message: "could not collect metrics" } }));
      },
    );
  });
  return new Promise((resolve) => {
    server.once("error", (error) => {
      logger.error({ err: error, port }, `metrics are not served: port ${port} could not be opened`);
      resolve(undefined);
    });
    server.listen(port, () => {
      logger.info({ port }, `metrics at :${port}/metrics`);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
