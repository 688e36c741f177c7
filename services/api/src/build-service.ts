import { randomUUID } from "node:crypto";
import { CANCEL_CHANNEL, JobName, buildJobSchema, recordKeys, storageKeys, type AppRecord, type Build, type BuildJob } from "@slipway/shared";
import type { ApiContext } from "./context";
import { conflict, tooManyRequests } from "./errors";
import type { StoredSource } from "./source-upload";

/** BullMQ retry policy for builds: transient failures back off; permanent ones are marked unrecoverable by the worker. */
export const BUILD_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: { count: 1000 },
  removeOnFail: { count: 5000 },
} as const;

/** Admission control: refuses a new build while `MAX_QUEUED_BUILDS` wait, before anything is stored. */
export async function admitBuild(ctx: ApiContext): Promise<void> {
  const waiting = await ctx.buildQueue.getJobCountByTypes("waiting", "prioritized", "delayed");
  if (waiting >= ctx.config.MAX_QUEUED_BUILDS) {
    throw tooManyRequests("queue_full", `${waiting} builds are already waiting (MAX_QUEUED_BUILDS is ${ctx.config.MAX_QUEUED_BUILDS}); try again later`);
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
  if (!canceled) throw conflict("build_finished", `build ${build.id} has already ${(await ctx.builds.get(build.id))?.status}`);
  if (build.status === "queued") {
    await ctx.buildQueue.remove(build.id).catch(() => undefined);
    // No worker will write this build's log: end it here so followers stop.
    await ctx.buildLogs.append(build.id, ["Build canceled before it started"]);
    await ctx.buildLogs.end(build.id, "canceled");
  }
  await ctx.redis.publish(CANCEL_CHANNEL, JSON.stringify({ buildId: build.id }));
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
    sourceKey: build.sourceKey,
    sourceSha256: build.sourceSha256,
    deploy: build.deploy,
    noCache: request.noCache ?? false,
    requestId: request.requestId,
  });
  // The build id as job id: a repeated add of the same build is a no-op in BullMQ.
  await ctx.buildQueue.add(JobName.build, job, { ...BUILD_JOB_OPTIONS, jobId: build.id });
  ctx.logger.info({ buildId: build.id, app: build.app, requestId: request.requestId, sourceSha256: build.sourceSha256 }, "build queued");
  return build;
}

/** Deletes `key` only while it still holds `value`. */
const DELETE_IF = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Rebuilds the app's latest source. While a rebuild of the same source (with the same noCache)
 * is still queued, further requests get that build instead of a second one.
 */
export async function rebuildApp(ctx: ApiContext, app: AppRecord, noCache: boolean, requestId: string): Promise<{ build: Build; coalesced: boolean }> {
  const sha256 = app.latestSourceSha256!;
  const source = { key: app.latestSourceKey ?? storageKeys.source(app.name, sha256), sha256 };
  const key = recordKeys(ctx.config.QUEUE_PREFIX).queuedRebuild(app.name, sha256, noCache);
  for (let attempt = 0; attempt < 50; attempt++) {
    const id = randomUUID();
    if ((await ctx.redis.set(key, id, "EX", 3600, "NX")) === "OK") {
      try {
        return { build: await enqueueBuild(ctx, { app: app.name, source, deploy: true, noCache, requestId, id }), coalesced: false };
      } catch (error) {
        await ctx.redis.eval(DELETE_IF, 1, key, id);
        throw error;
      }
    }
    const claimedId = await ctx.redis.get(key);
    if (!claimedId) continue;
    const claimed = await ctx.builds.get(claimedId);
    if (claimed?.status === "queued") return { build: claimed, coalesced: true };
    if (!claimed) {
      // Another request is creating it right now.
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    // That rebuild has started (or ended): a new request means a new build.
    await ctx.redis.eval(DELETE_IF, 1, key, claimedId);
  }
  throw new Error("could not coalesce the rebuild request");
}

/** The public view of a build: the record minus fields that only the worker needs. */
export function presentBuild(build: Build) {
  const { sourceKey: _sourceKey, deploy: _deploy, ...visible } = build;
  return visible;
}
