import { storageKeys, type BuildLogStream, type ObjectStore } from "@slipway/shared";

/** Lines are batched to Redis this often, so a chatty pip install costs few round trips. */
const FLUSH_INTERVAL_MS = 100;

/**
 * A build's log: every line goes live to the build's Redis stream (batched), which followers of
 * `GET /v1/builds/:id/logs` read; at the end the whole stream is saved as `build.log` in storage.
 */
export class BuildLog {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly stream: BuildLogStream,
    private readonly buildId: string,
  ) {}

  line(text: string): void {
    this.pending.push(text.replace(/\r/g, ""));
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS);
  }

  /** Sends what is pending; a failed send keeps the lines for the next try rather than dropping them. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.stream.append(this.buildId, batch);
      } catch {
        this.pending.unshift(...batch);
      }
    });
    return this.flushing;
  }

  /**
   * Flushes and saves the complete log to storage as `build.log`. Done before the build's final
   * status is recorded, so whoever sees the build end finds its log.
   */
  async save(store: ObjectStore, app: string): Promise<void> {
    await this.flush();
    if (this.pending.length) await this.flush();
    const { lines } = await this.stream.read(this.buildId);
    await store.putBuffer(storageKeys.buildLog(app, this.buildId), lines.map((l) => `${l}\n`).join(""), "text/plain; charset=utf-8");
  }

  /** Marks the live stream ended with `status`: followers stop there. */
  async end(status: string): Promise<void> {
    await this.stream.end(this.buildId, status);
  }
}
