import { eachLine } from "./output-lines";
import { spawnSandboxed, type SandboxedProcess, type SandboxMode, type SandboxSpec } from "@slipway/shared/sandbox";

/** Lines of the app's output kept for failure reports. */
const TAIL_LINES = 40;

export interface AppExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when a sandbox limit ended the app: "out of memory (limit 512 MiB)". */
  limitReason?: string;
}

export interface StartOptions {
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** Each output line of the app, as it arrives (cut to a bound). */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  sandbox: { spec: SandboxSpec; mode: SandboxMode };
}

/**
 * One app process in its sandbox (or, with the sandbox off, its own process group), so that
 * stopping it also stops whatever it forked (gunicorn's workers, npm's child node).
 */
export class AppProcess {
  readonly exited: Promise<AppExit>;
  /** When it was started (ms): what it wrote is what changed after. */
  readonly startedAt = Date.now();
  private readonly tailLines: string[] = [];
  private readonly child: SandboxedProcess;
  private done = false;

  constructor(options: StartOptions) {
    this.child = spawnSandboxed({ command: "/bin/sh", args: ["-c", options.command], cwd: options.cwd, env: options.env }, options.sandbox.spec, options.sandbox.mode);
    for (const [name, stream] of [["stdout", this.child.stdout], ["stderr", this.child.stderr]] as const) {
      eachLine(stream, (line) => {
        this.tailLines.push(line);
        if (this.tailLines.length > TAIL_LINES) this.tailLines.shift();
        options.onLine?.(line, name);
      });
    }
    this.exited = this.child.exited.then(({ code, signal, limitReason }) => {
      this.done = true;
      return { code, signal, ...(limitReason ? { limitReason } : {}) };
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.done;
  }

  /** The last lines the app printed, for a failure report. */
  tail(lines = 15): string {
    return this.tailLines.slice(-lines).join("\n");
  }

  /** SIGTERM to the app, the end of its whole sandbox after `graceMs`; resolves when everything has exited. */
  async stop(graceMs = 10_000): Promise<AppExit> {
    if (this.running) {
      this.child.terminate("SIGTERM");
      const timer = setTimeout(() => this.child.kill(), graceMs);
      const exit = await this.exited;
      clearTimeout(timer);
      return exit;
    }
    this.child.kill();
    return this.exited;
  }
}
