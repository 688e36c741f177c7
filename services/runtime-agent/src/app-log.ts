import type { AgentConfig, AppLogEntry, AppLogStream, AppLogStreamName, Logger } from "@slipway/shared";
import { withTimeout } from "./timeout";

/** Lines held while a write is under way; past this, lines are dropped (and counted) rather than the app slowed. */
const BUFFER_LINES = 10_000;
/** A write starts once this many lines wait, or `FLUSH_MS` after the first. */
const BATCH_LINES = 500;
const FLUSH_MS = 100;
/** One pipeline carries at most this many lines. */
const WRITE_LINES = 2000;

type Config = Pick<AgentConfig, "APP" | "INSTANCE_ID" | "APP_LOG_MAX_LINES" | "APP_LOG_MAX_AGE_S">;

/**
 * The instance's share of the app's log: the app's output and the agent's lifecycle lines for it
 * (stream `system`), buffered and written in batches. Writing never waits on the app's pipes or
 * the other way round: a full buffer drops lines, and a `system` line later says how many.
 */
export class AppLog {
  private buffer: AppLogEntry[] = [];
  private dropped = 0;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly stream: Pick<AppLogStream, "append">,
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  /** A line the app printed. */
  output(stream: Exclude<AppLogStreamName, "system">, line: string, release: number | null): void {
    this.add(stream, line, release);
  }

  /** What the agent did to the app: restore, start, health, crash, switch, stop. */
  system(line: string, release: number | null): void {
    this.add("system", line, release);
  }

  /** Writes everything buffered so far; waits at most `timeoutMs` (a Redis that is down must not hold a shutdown up). */
  async flush(timeoutMs = 5000): Promise<void> {
    this.startWriting();
    await withTimeout(this.writing ?? Promise.resolve(), timeoutMs).catch((error) => this.logger.warn({ err: error }, "could not write the last app log lines"));
  }

  private add(stream: AppLogStreamName, line: string, release: number | null): void {
    if (this.buffer.length >= BUFFER_LINES) {
      this.dropped += 1;
      return;
    }
    this.buffer.push(this.entry(stream, line, release));
    if (this.buffer.length >= BATCH_LINES) this.startWriting();
    else this.timer ??= setTimeout(() => this.startWriting(), FLUSH_MS).unref();
  }

  /** One writer at a time, which drains the buffer: lines keep their order. */
  private startWriting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.writing ??= this.writeAll().finally(() => (this.writing = undefined));
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0 || this.dropped > 0) {
      const batch = this.buffer.splice(0, WRITE_LINES);
      const appLines = batch.length;
      const dropped = batch.length < WRITE_LINES ? this.dropped : 0;
      // The lines dropped were printed after everything still buffered when the buffer filled.
      if (dropped > 0) {
        const release = batch.at(-1)?.release ?? null;
        batch.push(this.entry("system", `${dropped} lines dropped: the app printed faster than its log could be written`, release));
        this.dropped -= dropped;
      }
      if (!(await this.write(batch))) {
        // Counted, not retried now: the next line (or the final flush) tries again.
        this.dropped += appLines + dropped;
        return;
      }
    }
  }

  private async write(batch: AppLogEntry[]): Promise<boolean> {
    try {
      await this.stream.append(this.config.APP, batch, { maxLines: this.config.APP_LOG_MAX_LINES, maxAgeS: this.config.APP_LOG_MAX_AGE_S });
      if (this.failing) this.logger.info("app log writes work again");
      this.failing = false;
      return true;
    } catch (error) {
      // Warn once per outage, not once per batch.
      if (!this.failing) this.logger.warn({ err: error }, "could not write app log lines; counting them as dropped until Redis answers");
      this.failing = true;
      return false;
    }
  }

  private entry(stream: AppLogStreamName, line: string, release: number | null): AppLogEntry {
    return { time: new Date().toISOString(), instanceId: this.config.INSTANCE_ID, release, stream, line };
  }
}
