import type { Redis } from "ioredis";
import { instanceReportSchema, type InstanceReport } from "../contracts/index";
import { checkInstanceId } from "./ids";
import { redisKeys } from "./keys";
import { parseJsonRecord } from "./parse";

export class InstanceRepository {
  constructor(private readonly redis: Redis) {}

  async report(app: string, report: InstanceReport): Promise<void> {
    await this.redis.hset(redisKeys.instances(app), checkInstanceId(report.instanceId), JSON.stringify(report));
  }

  async list(app: string): Promise<InstanceReport[]> {
    const all = await this.redis.hvals(redisKeys.instances(app));
    return all
      .map((raw) => parseJsonRecord(instanceReportSchema, raw, "instance report"))
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }
}
