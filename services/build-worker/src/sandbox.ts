import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { BuildAborted, BuildFailure } from "./errors";

export interface RunOptions {
  cwd: string;
  /** The complete environment of the command: nothing of the worker's own is inherited. */
  env: Record<string, string>;
  /** Every output line, stdout and stderr interleaved as they arrive. */
  onLine: (line: string) => void;
  signal: AbortSignal;
  /** Says what failed, for the build's error: "pip install". */
  label: string;
}

/** How long a process group gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

/**
 * Runs one build command in its own process group, so that cancel or timeout can kill everything
 * it started (pip's subprocesses, npm's scripts), not just the direct child.
 */
export function runCommand(command: string, args: string[], options: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (options.signal.aborted) return reject(abortError(options.signal));
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const onAbort = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    };
    options.signal.addEventListener("abort", onAbort, { once: true });

    const lines = [createInterface({ input: child.stdout }), createInterface({ input: child.stderr })];
    for (const reader of lines) reader.on("line", options.onLine);
    const outputDone = Promise.all(lines.map((reader) => new Promise((r) => reader.once("close", r))));

    child.on("error", (error) => {
      options.signal.removeEventListener("abort", onAbort);
      reject(new BuildFailure(`${options.label}: could not start ${command}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      options.signal.removeEventListener("abort", onAbort);
      // Make sure nothing the command left behind outlives it.
      killGroup("SIGKILL");
      if (killTimer) clearTimeout(killTimer);
      void outputDone.then(() => {
        if (options.signal.aborted) reject(abortError(options.signal));
        else if (code === 0) resolve();
        else reject(new BuildFailure(`${options.label} failed (${signal ? `killed by ${signal}` : `exit code ${code}`})`));
      });
    });
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof BuildAborted ? signal.reason : new BuildAborted("canceled", "the build was canceled");
}
