/** Rejects when `promise` has not settled within `ms`: a Redis that stopped answering must not hold the agent up. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller then checks why it woke). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The agent is stopping: a move under way gives up where it stands (its turn and any release
 * command claim given back) rather than hold the stop until a health check or another
 * instance's release command has run its course. Not a failure of the release.
 */
export class AgentStopping extends Error {
  override name = "AgentStopping";
  constructor() {
    super("the agent is stopping");
  }
}

export function throwIfStopping(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AgentStopping();
}

/** `promise`, or an AgentStopping rejection as soon as `signal` aborts, whichever comes first. */
export function untilStopping<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new AgentStopping());
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(new AgentStopping());
    signal.addEventListener("abort", stop, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", stop));
  });
}
