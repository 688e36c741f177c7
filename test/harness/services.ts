import { start as startApi, type ApiContext } from "@slipway/api";
import { start as startWorker, type RunningWorker } from "@slipway/build-worker";
import { freePort, loadApiConfig, loadWorkerConfig, recordKeys, type Logger, type RecordKeys } from "@slipway/shared";

/** The API and a build worker in this process, started through the services' own front doors. */
export interface ServiceStack {
  /** What a service process on this stack needs in its environment. */
  env: Record<string, string>;
  api: ApiContext;
  baseUrl: string;
  /** Absent when started with `{ worker: false }`. */
  worker: RunningWorker | undefined;
  /** The stack's record keys (they follow its QUEUE_PREFIX). */
  keys: RecordKeys;
  close(): Promise<void>;
}

/**
 * Starts the API on a free loopback port and (unless `worker: false`) one build worker, both
 * configured by `env`; tests and benches share it so neither wires the services by hand.
 */
export async function startServices(env: Record<string, string>, logger: Logger, options: { worker?: boolean } = {}): Promise<ServiceStack> {
  const api = await startApi(loadApiConfig({ ...env, API_HOST: "127.0.0.1", API_PORT: String(await freePort()) }), logger);
  let worker: RunningWorker | undefined;
  try {
    if (options.worker !== false) worker = await startWorker(loadWorkerConfig(env), logger);
  } catch (error) {
    await api.close(0);
    throw error;
  }
  return {
    env,
    api: api.ctx,
    baseUrl: api.url,
    worker,
    keys: recordKeys(api.ctx.config.QUEUE_PREFIX),
    close: async () => {
      await worker?.close(1000);
      // The queue's keys on a shared Redis are this stack's to remove.
      await api.ctx.buildQueue.obliterate({ force: true }).catch(() => undefined);
      await api.close(0);
    },
  };
}
