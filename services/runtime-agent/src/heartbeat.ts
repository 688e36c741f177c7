import type { AgentConfig, InstanceReport, InstanceRepository, InstanceState, Logger } from "@slipway/shared";
import type { ServingApp, SupervisorEvents } from "./supervisor";
import type { TargetRelease } from "./target";
import { withTimeout } from "./timeout";
import type { TypedEvents } from "./typed-events";

const HEARTBEAT_INTERVAL_MS = 5000;

/** What the heartbeat reads from the app it reports on. */
export interface SupervisedApp {
  readonly serving: ServingApp | undefined;
  readonly restarts: number;
  readonly events: TypedEvents<SupervisorEvents>;
}

/**
 * The instance's state as the API shows it: the last state reported, its error, and the release
 * it concerns; written to the InstanceRepository on each change and on an interval, so a
 * silent instance shows as stale.
 */
export class Heartbeat {
  private state: InstanceState | undefined;
  private error: string | undefined;
  private reported: { release?: TargetRelease; appPath?: string } = {};
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: Pick<AgentConfig, "APP" | "INSTANCE_ID" | "PORT" | "HOST_ID" | "HOST_ADDRESS">,
    private readonly instances: Pick<InstanceRepository, "report" | "announce">,
    private readonly app: SupervisedApp,
    private readonly logger: Logger,
    /** The control plane refused a report: the instance is no longer placed on this host. */
    private readonly onFenced: () => void = () => undefined,
  ) {
    app.events.on("serving", () => this.report("running"));
    app.events.on("crashed", ({ release, appPath, reason }) => this.report("failed", release, appPath, reason));
    app.events.on("restart-failed", ({ release, appPath, reason }) => this.report("failed", release, appPath, reason));
  }

  start(intervalMs = HEARTBEAT_INTERVAL_MS): void {
    this.timer = setInterval(() => void this.beat(), intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Records a new state; `release` and `appPath` default to the serving app's, which "running" always names. */
  async report(state: InstanceState, release?: TargetRelease, appPath?: string, error?: string): Promise<void> {
    this.state = state;
    this.error = error;
    const serving = this.app.serving;
    if (state === "running" && serving) {
      release = serving.release;
      appPath = serving.appPath;
    }
    this.reported = { release: release ?? serving?.release, appPath: appPath ?? serving?.appPath };
    await this.beat();
    // The front door follows states within a second of their change, not at the next sync.
    await withTimeout(this.instances.announce(this.config.APP), 3000).catch((error: unknown) => this.logger.debug({ err: error }, "could not announce the state"));
  }

  snapshot(): InstanceReport | undefined {
    if (!this.state) return undefined;
    return {
      instanceId: this.config.INSTANCE_ID,
      release: this.reported.release?.version ?? null,
      buildId: this.reported.release?.buildId ?? null,
      state: this.state,
      appPath: this.reported.appPath ?? null,
      lastHeartbeatAt: new Date().toISOString(),
      pid: this.app.serving?.pid ?? null,
      servingRelease: this.app.serving?.release.version ?? null,
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      restarts: this.app.restarts,
      ...(this.error ? { error: this.error } : {}),
      ...(this.config.HOST_ID ? { host: this.config.HOST_ID, address: this.config.HOST_ADDRESS ?? this.config.HOST_ID, port: this.config.PORT } : {}),
    };
  }

  private async beat(): Promise<void> {
    const snapshot = this.snapshot();
    if (!snapshot) return;
    try {
      const recorded = await withTimeout(this.instances.report(this.config.APP, snapshot), 3000);
      if (!recorded) {
        this.logger.warn("the control plane no longer places this instance here: stopping it");
        this.onFenced();
      }
    } catch (error) {
      this.logger.debug({ err: error }, "could not report state");
    }
  }
}
