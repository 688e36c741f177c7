import type { Redis } from "ioredis";
import type { Logger } from "./log";
import type { PlacementRepository } from "./records/index";

export interface PlacementSettings {
  HOST_DEAD_S: number;
  DEFAULT_INSTANCES: number;
}

const LOOP_INTERVAL_MS = 1000;

/**
 * The control plane's placement pass: every second, each app that is not placed as asked, or has
 * instances on a silent or draining host, gets its placement script run. Any number of these may
 * run (one per API replica): every pass is one atomic script, so two passes never place twice.
 */
export class PlacementLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly placements: PlacementRepository,
    private readonly redis: Redis,
    private readonly settings: PlacementSettings,
    private readonly logger: Logger,
  ) {}

  start(intervalMs = LOOP_INTERVAL_MS): void {
    this.timer = setInterval(() => {
      this.running ??= this.pass()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.debug({ err: error }, "placement pass failed"))
        .finally(() => (this.running = undefined));
    }, intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass over the apps that need one; answers how many it looked at. */
  async pass(): Promise<number> {
    const deadMs = this.settings.HOST_DEAD_S * 1000;
    const apps = await this.placements.appsToPlace(await this.placements.hostsNeedingMoves(deadMs));
    if (apps.length === 0) return 0;
    const mayDeclareLost = await this.redisUpFor(deadMs);
    for (const app of apps) await this.place(app, { mayDeclareLost });
    return apps.length;
  }

  /** Places one app now (a scale change, a new app); `desired` records a new count first. */
  async place(app: string, options: { desired?: number; mayDeclareLost?: boolean } = {}): Promise<{ desired: number; placed: number }> {
    const deadMs = this.settings.HOST_DEAD_S * 1000;
    const mayDeclareLost = options.mayDeclareLost ?? (await this.redisUpFor(deadMs));
    const result = await this.placements.place(app, { deadMs, mayDeclareLost, defaultInstances: this.settings.DEFAULT_INSTANCES, ...(options.desired === undefined ? {} : { desired: options.desired }) });
    return result;
  }

  /**
   * Whether Redis has been up for `ms`: hosts could not heartbeat while it was down, so right after
   * a restart every host looks silent. None is declared lost until each had time to beat again.
   */
  private async redisUpFor(ms: number): Promise<boolean> {
    const info = await this.redis.info("server");
    const uptime = Number(/uptime_in_seconds:(\d+)/.exec(info)?.[1] ?? 0);
    return uptime * 1000 >= ms;
  }
}
