import type { Redis } from "ioredis";
import { instanceReportSchema, publish, ROUTES_CHANNEL, type InstanceReport } from "../contracts/index";
import { checkAppName, checkInstanceId } from "./ids";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { parseJsonRecord } from "./parse";
import { FENCED_REPORT } from "./placement-scripts";

export class InstanceRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  /**
   * Records the instance's report. One that names its host is written only while the instance is
   * still placed there: false tells a host that lost the instance (moved, drained, scaled down).
   */
  async report(app: string, report: InstanceReport): Promise<boolean> {
    const key = this.redisKeys.instances(app);
    const instanceId = checkInstanceId(report.instanceId);
    if (report.host === undefined) {
      await this.redis.hset(key, instanceId, JSON.stringify(report));
      return true;
    }
    return (await this.redis.eval(FENCED_REPORT, 2, key, this.redisKeys.placements(app), instanceId, report.host, JSON.stringify(report))) === 1;
  }

  /** Tells the routers that an instance of the app changed state (not sent for a mere heartbeat). */
  async announce(app: string): Promise<void> {
    await publish(this.redis, ROUTES_CHANNEL, { app: checkAppName(app) });
  }

  async list(app: string): Promise<InstanceReport[]> {
    const all = await this.redis.hvals(this.redisKeys.instances(app));
    return all
      .map((raw) => parseJsonRecord(instanceReportSchema, raw, "instance report"))
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }
}
