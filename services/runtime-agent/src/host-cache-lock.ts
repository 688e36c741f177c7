import lockfile from "proper-lockfile";
import type { Logger } from "@slipway/shared";
import { sleep, throwIfStopping } from "./timeout";

/** Beside a host cache entry: the lock of its release, host-wide (a directory, as proper-lockfile makes it). */
export const LOCK_SUFFIX = ".lock";
/** How long an agent waits for another one's extraction: as long as a big release may take. */
const LOCK_WAIT_MS = 15 * 60_000;
const LOCK_POLL_MS = 50;

/**
 * The release's host-wide lock: waited for (until `signal` aborts, the agent stopping), or
 * (`wait` false) only taken when free. Not Redis, which is about the cluster, not this disk.
 */
export async function lockRelease(entry: string, options: { wait: boolean; logger: Logger; signal?: AbortSignal }): Promise<() => Promise<void>> {
  const deadline = Date.now() + (options.wait ? LOCK_WAIT_MS : 0);
  for (;;) {
    try {
      return await lockfile.lock(entry, {
        realpath: false,
        lockfilePath: `${entry}${LOCK_SUFFIX}`,
        // A holder that died leaves its lock behind: it is taken over once not refreshed for this long.
        stale: 30_000,
        // The default throws from a timer and would end the agent; a lock lost to a stall only risks a second extraction.
        onCompromised: (error) => options.logger.warn({ err: error, entry }, "lost the host cache lock; another agent may extract the same release"),
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "ELOCKED" || Date.now() >= deadline) throw error;
    }
    await sleep(LOCK_POLL_MS, options.signal);
    throwIfStopping(options.signal);
  }
}
