import { randomUUID } from "node:crypto";
import { BUILD_JOB_OPTIONS, JobName, buildJobSchema, type Build, type BuildJob } from "@slipway/shared";
import type { ApiContext } from "./context";
import { errors } from "./errors";
import type { StoredSource } from "./source-upload";

/** Admission control: refuses a new build while `MAX_QUEUED_BUILDS` wait, before anything is stored. */
export async function admitBuild(ctx: ApiContext): Promise<void> {
  const waiting = await ctx.buildQueue.getJobCountByTypes("waiting", "prioritized", "delayed");
  if (waiting >= ctx.config.MAX_QUEUED_BUILDS) {
    throw errors.queueFull(waiting, ctx.config.MAX_QUEUED_BUILDS);
  }
}

/**
 * Cancels a queued or running build: the record turns `canceled` at once (so it never gets a
 * release), a queued job is dropped, and the worker running it is told to kill its processes.
 */
export async function cancelBuild(ctx: ApiContext, build: Build): Promise<Build> {
  const canceled = await ctx.builds.transition(build.id, ["queued", "running"], {
    status: "canceled",
    finishedAt: new Date().toISOString(),
    error: "canceled by request",
  });
  if (!canceled) throw errors.buildFinished(build.id, (await ctx.builds.get(build.id))?.status);
  if (build.status === "queued") {
    await ctx.buildQueue.remove(build.id).catch(() => undefined);
    // No worker will write this build's log: end it here so followers stop.
    await ctx.buildLogs.append(build.id, ["Build canceled before it started"]);
    await ctx.buildLogs.end(build.id, "canceled");
  }
  await ctx.builds.announceCancel(build.id);
  ctx.logger.info({ buildId: build.id, app: build.app }, "build canceled");
  return (await ctx.builds.get(build.id))!;
}

/** Records a queued build of `source` and hands it to the build workers. */
export async function enqueueBuild(
  ctx: ApiContext,
  request: { app: string; source: Pick<StoredSource, "key" | "sha256">; deploy: boolean; noCache?: boolean; requestId?: string; id?: string },
): Promise<Build> {
  await ctx.apps.upsert(request.app, { latestSourceSha256: request.source.sha256, latestSourceKey: request.source.key });
  const build: Build = {
    id: request.id ?? randomUUID(),
    app: request.app,
    status: "queued",
    createdAt: new Date().toISOString(),
    sourceSha256: request.source.sha256,
    sourceKey: request.source.key,
    deploy: request.deploy,
  };
  await ctx.builds.create(build);
  const job: BuildJob = buildJobSchema.parse({
    buildId: build.id,
    app: build.app,
    noCache: request.noCache ?? false,
    requestId: request.requestId,
  });
  // The build id as job id: a repeated add of the same build is a no-op in BullMQ.
  await ctx.buildQueue.add(JobName.build, job, { ...BUILD_JOB_OPTIONS, jobId: build.id });
  ctx.logger.info({ buildId: build.id, app: build.app, requestId: request.requestId, sourceSha256: build.sourceSha256 }, "build queued");
  return build;
}

/** The public view of a build: the record minus fields that only the worker and the agents need. */
export function presentBuild(build: Build) {
  const { sourceKey: _sourceKey, deploy: _deploy, outputRecordSha256: _outputRecordSha256, ...visible } = build;
  return visible;
}
