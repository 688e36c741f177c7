import { createServer } from "node:http";
import type { ApiConfig, Logger } from "@slipway/shared";
import { createApi } from "./app";
import { closeContext, createContext, type ApiContext } from "./context";
import { GitHost } from "./git/git-host";
import { createMetrics } from "./metrics";

export type { ApiContext } from "./context";

export interface RunningApi {
  ctx: ApiContext;
  /** Where it listens, `http://<API_HOST>:<API_PORT>`. */
  url: string;
  /**
   * Stops taking connections; requests in flight (live-log followers hold theirs open) get
   * `graceMs`, then every connection is closed. Closes its own connections to Redis.
   */
  close(graceMs?: number): Promise<void>;
}

/** The API's front door: connects, listens on `API_HOST:API_PORT` and answers once it listens. */
export async function start(config: ApiConfig, logger: Logger): Promise<RunningApi> {
  const ctx = await createContext(config, logger);
  const metrics = createMetrics(ctx);
  const git = new GitHost(ctx);
  const server = createServer(createApi(ctx, metrics, git));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.API_PORT, config.API_HOST, () => resolve());
  }).catch(async (error: unknown) => {
    await metrics.close();
    await git.close();
    await closeContext(ctx);
    throw error;
  });
  ctx.placement.start();
  return {
    ctx,
    url: `http://${config.API_HOST}:${config.API_PORT}`,
    close: async (graceMs = 10_000) => {
      setTimeout(() => server.closeAllConnections(), graceMs).unref();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await git.close();
      await metrics.close();
      await closeContext(ctx);
    },
  };
}
