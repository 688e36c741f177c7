import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** Lines of the app's output kept for failure reports. */
const TAIL_LINES = 40;

export interface AppExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** Each output line of the app, as it arrives. */
  onLine?: (line: string) => void;
}

/**
 * One app process, in its own process group so that stopping it also stops whatever it forked
 * (gunicorn's workers, npm's child node).
 */
export class AppProcess {
  readonly exited: Promise<AppExit>;
  private readonly tailLines: string[] = [];
  private readonly child: ChildProcess;

  constructor(options: StartOptions) {
    this.child = spawn("/bin/sh", ["-c", options.command], { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        this.tailLines.push(line);
        if (this.tailLines.length > TAIL_LINES) this.tailLines.shift();
        options.onLine?.(line);
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => resolve({ code, signal }));
      this.child.once("error", () => resolve({ code: null, signal: null }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines the app printed, for a failure report. */
  tail(lines = 15): string {
    return this.tailLines.slice(-lines).join("\n");
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 10_000): Promise<AppExit> {
    if (this.running) {
      this.signalGroup("SIGTERM");
      const timer = setTimeout(() => this.signalGroup("SIGKILL"), graceMs);
      const exit = await this.exited;
      clearTimeout(timer);
      this.signalGroup("SIGKILL"); // stragglers of the group
      return exit;
    }
    this.signalGroup("SIGKILL");
    return this.exited;
  }

  private signalGroup(signal: NodeJS.Signals) {
    try {
      if (this.child.pid) process.kill(-this.child.pid, signal);
    } catch {
      // The group is gone.
    }
  }
}
