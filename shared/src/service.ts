import { ConfigError } from "./config";

export interface RunningService {
  /** Stops in order (stop taking work, drain, close connections); the process exits 0 after it. */
  stop(signal: NodeJS.Signals): Promise<void>;
  /** Settles when start-up has finished; a rejection fails the process like a failed start. */
  ready?: Promise<void>;
}

/**
 * The front door every service's `main.ts` goes through: starts it, turns a start-up failure into
 * one line and exit 1 (a bad configuration prints just its message), and stops it once on the
 * first SIGTERM or SIGINT, even one that arrives while it is still starting.
 */
export function runService(name: string, start: () => Promise<RunningService>): void {
  let running: RunningService | undefined;
  let stopping = false;
  let starting: Promise<RunningService> | undefined;
  const fail = (error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : `${name} failed to start: ${(error as Error).message}`);
    process.exit(1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      // A signal during start-up stops the service as soon as there is one to stop (its `ready`
      // is not waited for: a stop must end whatever start-up work is still under way).
      if (!running) await starting?.catch(() => undefined);
      await running?.stop(signal);
      process.exit(0);
    })();
  };
  // Before start-up begins: a signal that arrives while it runs must find the handler there.
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  starting = start();
  starting
    .then((service) => {
      running = service;
      return service.ready;
    })
    .catch(fail);
}
