import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import { buildJobSchema, isTerminal, type Build } from "@slipway/shared";
import { BuildLog } from "./build-log";
import type { WorkerContext } from "./context";
import { BuildAborted, BuildFailure, failureMessage } from "./errors";
import { buildApp } from "./steps/build";
import { removeScratch, type BuildContext } from "./steps/build-context";
import { enterSandbox, sandboxCommands } from "./steps/build-sandbox";
import { detect } from "./steps/detect";
import { receiveSource } from "./steps/fetch-source";
import { pack } from "./steps/pack";
import { completedOutput, publishRelease, uploadOutput, type BuildOutput } from "./steps/publish";
import { BuildPhases } from "./steps/phases";
import { openLayerCache } from "./steps/restore-cache";

const CANCEL_POLL_MS = 2000;

export interface BuildOutcome {
  status: Build["status"];
  release?: number;
}

/** Processes one `build` job: source in, artifact + manifest + release out. */
export function createBuildProcessor(ctx: WorkerContext) {
  return async (job: Job): Promise<BuildOutcome> => {
    const parsed = buildJobSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid build job: ${parsed.error.issues[0]?.message}`);
    const payload = parsed.data;
    const build = await ctx.builds.get(payload.buildId);
    if (!build) throw new UnrecoverableError(`build ${payload.buildId} has no record`);
    if (isTerminal(build.status)) return { status: build.status };

    const logger = ctx.logger.child({ buildId: build.id, app: build.app, requestId: payload.requestId, attempt: job.attemptsMade + 1 });
    const log = new BuildLog(ctx.buildLogs, build.id);
    const startedAt = build.startedAt ?? new Date().toISOString();
    await ctx.builds.transition(build.id, ["queued", "running"], { status: "running", startedAt });
    logger.info("build started");

    const controller = ctx.activeBuilds.start(build.id);
    const timer = setTimeout(
      () => ctx.activeBuilds.abort(build.id, new BuildAborted("timeout", `the build ran longer than BUILD_TIMEOUT_S (${ctx.config.BUILD_TIMEOUT_S} s)`)),
      ctx.config.BUILD_TIMEOUT_S * 1000,
    );
    // Cancel requests also arrive on a Redis channel; this catches one sent while that was down.
    const cancelPoll = setInterval(() => {
      void ctx.builds.get(build.id).then(
        (current) => current?.status === "canceled" && ctx.activeBuilds.abort(build.id, new BuildAborted("canceled", "the build was canceled")),
        () => undefined,
      );
    }, CANCEL_POLL_MS);
    const sourceDir = path.join(ctx.config.SCRATCH_DIR, build.id);
    const run: BuildContext = {
      worker: ctx,
      build,
      line: (text) => log.line(text),
      sourceDir,
      workDir: `${sourceDir}.work`,
      startedAt,
      signal: controller.signal,
      noCache: payload.noCache,
      phases: new BuildPhases(),
    };
    try {
      // Scratch space goes before the outcome is recorded: whoever sees the build end sees it clean.
      const result = await runBuild(run).finally(() => removeScratch(run));
      // Pinned before any agent hears of a release of it. An output a retry found in storage is
      // not: storage alone vouches for it, and agents restore it the vetted way.
      if (result.outputRecordSha256) await ctx.builds.transition(build.id, ["running"], { outputRecordSha256: result.outputRecordSha256 });
      const release = build.deploy ? await run.phases.time("publish", () => publishRelease(ctx, build, result.manifest.outputSha256!)) : undefined;
      log.line(`Phases: ${run.phases.summary()}`);
      log.line(release ? `Build succeeded: release v${release.version}` : "Build succeeded (not deployed)");
      await log.save(ctx.store, build.app);
      await ctx.builds.transition(build.id, ["running"], {
        status: "succeeded",
        finishedAt: new Date().toISOString(),
        platform: result.manifest.platformName,
        platformVersion: result.manifest.pythonVersion ?? result.manifest.nodeVersion,
        artifact: { key: result.artifactKey, sha256: result.manifest.outputSha256!, bytes: result.manifest.outputBytes! },
        manifestKey: result.manifestKey,
        phasesMs: run.phases.record(),
        ...(release ? { release: release.version } : {}),
      });
      await log.end("succeeded");
      logger.info({ release: release?.version }, "build succeeded");
      return { status: "succeeded", release: release?.version };
    } catch (error) {
      await removeScratch(run);
      const permanent = error instanceof BuildFailure || (error instanceof BuildAborted && error.reason !== "shutdown");
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (!permanent && !lastAttempt) {
        log.line(`Build interrupted by a transient error, will retry: ${failureMessage(error, ctx.config.SCRATCH_DIR)}`);
        await log.flush();
        logger.warn({ err: error }, "build attempt failed; retrying");
        throw error;
      }
      const status = error instanceof BuildAborted && error.reason === "canceled" ? "canceled" : "failed";
      const message = failureMessage(error, ctx.config.SCRATCH_DIR);
      log.line(`Phases: ${run.phases.summary()}`);
      log.line(`Build ${status}: ${message}`);
      await log.save(ctx.store, build.app).catch((e) => logger.error({ err: e }, "could not save the build log"));
      await ctx.builds.transition(build.id, ["queued", "running"], { status, finishedAt: new Date().toISOString(), error: message, phasesMs: run.phases.record() });
      await log.end(status).catch((e) => logger.error({ err: e }, "could not end the live log"));
      logger.warn({ err: error, status }, "build failed");
      if (status === "canceled") return { status };
      throw permanent ? new UnrecoverableError(message) : error;
    } finally {
      clearTimeout(timer);
      clearInterval(cancelPoll);
      ctx.activeBuilds.finish(build.id);
    }
  };
}

/** The phases, in order; a retry after the manifest was written publishes what is in storage. */
async function runBuild(run: BuildContext): Promise<BuildOutput> {
  const completed = await completedOutput(run);
  if (completed) return completed;
  const { phases } = run;
  await phases.time("fetch", () => receiveSource(run));
  const { sandbox, options, platform, startupCommand } = await phases.time("detect", async () => ({ sandbox: await enterSandbox(run), ...(await detect(run)) }));
  const commands = sandboxCommands(run, sandbox, options);
  const cache = openLayerCache(run, sandbox, commands.baseEnv);
  const result = await buildApp(run, { platform, options, sandbox, commands, cache, ...(startupCommand ? { startupCommand } : {}) });
  const packed = await phases.time("pack", () => pack(run, result));
  return phases.time("upload", () => uploadOutput(run, packed));
}
