import { spawn } from "node:child_process";
import type { Logger } from "@slipway/shared";
import type { AppLog } from "./app-log";
import type { ServingApp, SupervisorEvents } from "./supervisor";
import type { TypedEvents } from "./typed-events";

/** At most this many written files are named in the warning. */
const NAMED = 3;

/**
 * Watches the serving release's directory for files the app writes there after it started:
 * `$APP_PATH` is the release's, and the next release starts from a fresh one, so they are lost.
 * The first such file of each release is told in the app log (once), naming APP_DATA_PATH, where
 * data persists. Bytecode caches (`__pycache__`) and the agent's own `.slipway/` are not the app's
 * data and are not counted.
 */
export class ReleaseWritesWatch {
  private serving: { app: ServingApp; since: number } | undefined;
  private readonly warned = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    events: TypedEvents<SupervisorEvents>,
    private readonly appLog: Pick<AppLog, "system">,
    private readonly dataPath: string,
    private readonly logger: Logger,
  ) {
    events.on("serving", (app) => {
      // A restart of the same release keeps the first start's time: what it wrote before still counts.
      if (this.serving?.app.appPath !== app.appPath) this.serving = { app, since: app.startedAt };
    });
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look; never rejects. */
  async check(): Promise<void> {
    const serving = this.serving;
    if (!serving || this.warned.has(serving.app.appPath) || this.checking) return;
    this.checking = true;
    try {
      const written = await filesWrittenSince(serving.app.appPath, serving.since, NAMED);
      if (written.length === 0) return;
      this.warned.add(serving.app.appPath);
      const names = written.map((file) => `$APP_PATH/${file}`).join(", ");
      this.appLog.system(`the app wrote ${names}${written.length === NAMED ? " and more" : ""}: files under $APP_PATH belong to this release and are lost at the next one; keep data in $APP_DATA_PATH (${this.dataPath}), which persists`, serving.app.release.version);
    } catch (error) {
      this.logger.debug({ err: error }, "could not look for files the app wrote under APP_PATH");
    } finally {
      this.checking = false;
    }
  }
}

/**
 * Regular files under `dir` changed after `sinceMs`, relative, at most `max`: GNU find as root,
 * never following a link (`-P`) nor leaving the filesystem, so a tree the app can change cannot
 * lead it elsewhere; it only reads names and times.
 */
export function filesWrittenSince(dir: string, sinceMs: number, max: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const seconds = (sinceMs / 1000).toFixed(3);
    const find = spawn("find", ["-P", dir, "-xdev", "(", "-name", ".slipway", "-o", "-name", "__pycache__", ")", "-prune", "-o", "-type", "f", "-newermt", `@${seconds}`, "-printf", "%P\\n"], { stdio: ["ignore", "pipe", "ignore"] });
    const found: string[] = [];
    let buffered = "";
    find.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) if (line && found.length < max) found.push(line);
      if (found.length >= max) find.kill();
    });
    find.on("error", reject);
    find.on("close", () => resolve(found));
  });
}
