import { UnrecoverableError, type Job } from "bullmq";
import { collectGarbage, gcJobSchema, InstanceRepository, recordKeys, type GcReport } from "@slipway/shared";
import type { WorkerContext } from "./context";

/** Processes a `gc` job: old artifacts and sources of one app, or of every app. */
export function createGcProcessor(ctx: WorkerContext) {
  const instances = new InstanceRepository(ctx.redis, recordKeys(ctx.config.QUEUE_PREFIX));
  return async (job: Job): Promise<GcReport[]> => {
    const parsed = gcJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid gc job: ${parsed.error.issues[0]?.message}`);
    const names = parsed.data.app ? [parsed.data.app] : (await ctx.apps.list()).map((app) => app.name);
    const reports: GcReport[] = [];
    for (const name of names) {
      const app = await ctx.apps.get(name);
      if (!app) continue;
      const report = await collectGarbage({ ...ctx, instances }, name, app.retention ?? ctx.config.GC_RETAIN, ctx.config.GC_SOURCE_GRACE_S * 1000);
      if (report.deletedObjects > 0) ctx.logger.info({ app: name, builds: report.deletedBuilds.length, sources: report.deletedSources.length }, "garbage collected");
      reports.push(report);
    }
    return reports;
  };
}
