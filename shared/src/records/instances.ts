import type { Redis } from "ioredis";
import { instanceReportSchema, type InstanceReport } from "../contracts/index";
import { checkInstanceId } from "./ids";
import { redisKeys as defaultKeys, type RecordKeys } from "./keys";
import { parseJsonRecord } from "./parse";

export class InstanceRepository {
  constructor(private readonly redis: Redis, private readonly redisKeys: RecordKeys = defaultKeys) {}

  async report(app: string, report: InstanceReport): Promise<void> {
    await this.redis.hset(this.redisKeys.instances(app), checkInstanceId(report.instanceId), JSON.stringify(report));
  }

  async list(app: string): Promise<InstanceReport[]> {
    const all = await this.redis.hvals(this.redisKeys.instances(app));
    return all
      .map((raw) => parseJsonRecord(instanceReportSchema, raw, "instance report"))
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }
}
