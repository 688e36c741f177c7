import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * A service's heartbeat file: while the service does its work and reaches Redis (a build worker
 * consuming the queue, a host agent heartbeating its host) it rewrites a small file every
 * interval; its container's healthcheck (`dist/healthcheck.js`) reads it. A process that merely
 * exists is not healthy, and that is what the file stops saying.
 */

/**
 * Beside the service's own directory (a worker's scratch directory, a host agent's runtime root),
 * not in it: each service (container, test process) has its own.
 */
export const heartbeatFile = (dir: string) => `${path.resolve(dir)}.heartbeat`;

/** One slow Redis reply is not an outage: only this many missed beats in a row are. */
const MISSED_BEATS = 3;

interface Beat {
  at: number;
  intervalMs: number;
}

export interface Heartbeat {
  /** Stops beating and removes the file: a stopping worker takes no new builds. */
  stop(): Promise<void>;
}

export function startHeartbeat(file: string, intervalMs: number, alive: () => Promise<boolean>): Heartbeat {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let current: Promise<void> = Promise.resolve();
  const beat = async () => {
    if (await alive().catch(() => false)) {
      const temporary = `${file}.tmp`;
      await writeFile(temporary, JSON.stringify({ at: Date.now(), intervalMs } satisfies Beat));
      await rename(temporary, file);
    }
  };
  const schedule = () => {
    if (stopped) return;
    current = beat().catch(() => undefined);
    void current.then(() => {
      if (!stopped) timer = setTimeout(schedule, intervalMs).unref();
    });
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await current;
      await rm(file, { force: true });
    },
  };
}

/** Why the service (`who`, as a message names it) writing `file` is not healthy at `now`, or undefined when it is. */
export async function heartbeatProblem(file: string, now = Date.now(), who = "the worker", work = "has stopped consuming"): Promise<string | undefined> {
  let beat: Beat;
  try {
    beat = JSON.parse(await readFile(file, "utf8")) as Beat;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return `no heartbeat at ${file}: ${who} is not running, or not at work yet`;
    return `unreadable heartbeat at ${file}: ${(error as Error).message}`;
  }
  if (!Number.isFinite(beat.at) || !Number.isFinite(beat.intervalMs)) return `unreadable heartbeat at ${file}`;
  const ageMs = now - beat.at;
  if (ageMs > MISSED_BEATS * beat.intervalMs) {
    return `last heartbeat ${Math.round(ageMs / 1000)} s ago (one is due every ${beat.intervalMs / 1000} s): ${who} cannot reach Redis or ${work}`;
  }
  return undefined;
}

/** Answers whether `redis` replied to a PING within `ms` (commands queue, not fail, while it is down). */
export async function pingsWithin(redis: { ping(): Promise<string> }, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([redis.ping().then((reply) => reply === "PONG"), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
