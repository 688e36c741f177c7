import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { UnrecoverableError, type Job } from "bullmq";
import {
  ARCHIVE_EXTENSIONS,
  indexResources,
  buildJobSchema,
  isTerminal,
  ObjectNotFoundError,
  packDirectory,
  parseManifest,
  storageKeys,
  type Build,
  UnsafeArchiveError,
  type BuildManifest,
} from "@slipway/shared";
import { BuildLog } from "./build-log";
import type { WorkerContext } from "./context";
import { BuildAborted, BuildFailure } from "./errors";
import { loadBuildOptions } from "./build-options";
import { detectPlatform, type PlatformContext } from "./platforms/index";
import type { LayerCache } from "./platforms/platform";
import { DependencyCache } from "./steps/dependency-cache";
import { PASS_THROUGH, prepareBuildSandbox, runCommand, type BuildSandbox } from "./sandbox";
import type { ToolSpec } from "./tools";
import { fetchSource } from "./steps/fetch-source";
import { runBuildHooks } from "./steps/hooks";
import { publishRelease, uploadBuildOutput } from "./steps/publish";

/** The environment every build command starts from: the sandbox's PATH and HOME, index settings, nothing of Slipway's own. */
export function buildEnvironment(config: WorkerContext["config"], sandbox: Pick<BuildSandbox, "path" | "home">, host: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { PATH: sandbox.path, HOME: sandbox.home, LANG: host.LANG ?? "C.UTF-8" };
  for (const key of PASS_THROUGH) {
    const value = config[key] ?? host[key];
    if (value) env[key] = value;
  }
  return env;
}

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
    const workDir = `${sourceDir}.work`;
    try {
      // Scratch space goes before the outcome is recorded: whoever sees the build end sees it clean.
      const result = await runBuild(ctx, build, { log, sourceDir, workDir, startedAt, signal: controller.signal, noCache: payload.noCache }).finally(() =>
        removeScratch(sourceDir, workDir),
      );
      const release = payload.deploy ? await publishRelease(ctx, build, result.manifest.outputSha256!) : undefined;
      log.line(release ? `Build succeeded: release v${release.version}` : "Build succeeded (not deployed)");
      await log.save(ctx.store, build.app);
      await ctx.builds.transition(build.id, ["running"], {
        status: "succeeded",
        finishedAt: new Date().toISOString(),
        platform: result.manifest.platformName,
        platformVersion: result.manifest.pythonVersion ?? result.manifest.nodeVersion,
        artifact: { key: result.artifactKey, sha256: result.manifest.outputSha256!, bytes: result.manifest.outputBytes! },
        manifestKey: result.manifestKey,
        ...(release ? { release: release.version } : {}),
      });
      await log.end("succeeded");
      logger.info({ release: release?.version }, "build succeeded");
      return { status: "succeeded", release: release?.version };
    } catch (error) {
      await removeScratch(sourceDir, workDir);
      const permanent = error instanceof BuildFailure || (error instanceof BuildAborted && error.reason !== "shutdown");
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (!permanent && !lastAttempt) {
        log.line(`Build interrupted by a transient error, will retry: ${(error as Error).message}`);
        await log.flush();
        logger.warn({ err: error }, "build attempt failed; retrying");
        throw error;
      }
      const status = error instanceof BuildAborted && error.reason === "canceled" ? "canceled" : "failed";
      const message = (error as Error).message;
      log.line(`Build ${status}: ${message}`);
      await log.save(ctx.store, build.app).catch((e) => logger.error({ err: e }, "could not save the build log"));
      await ctx.builds.transition(build.id, ["queued", "running"], { status, finishedAt: new Date().toISOString(), error: message });
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

async function removeScratch(sourceDir: string, workDir: string): Promise<void> {
  await Promise.all([sourceDir, workDir, `${sourceDir}.home`].map((dir) => rm(dir, { recursive: true, force: true })));
}

interface BuildRun {
  log: BuildLog;
  sourceDir: string;
  workDir: string;
  startedAt: string;
  signal: AbortSignal;
  noCache: boolean;
}

async function runBuild(ctx: WorkerContext, build: Build, run: BuildRun) {
  const manifestKey = storageKeys.manifest(build.app, build.id);
  // A retry of a build whose manifest is already written (the worker died while publishing) reuses the output.
  const previous = await ctx.store.getText(manifestKey).then(parseManifest, (error) => {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  });
  if (previous?.outputSha256) {
    run.log.line("Build output already complete in storage: publishing it");
    return { manifest: previous, manifestKey, artifactKey: storageKeys.artifact(build.app, build.id, previous.outputFileName) };
  }

  await removeScratch(run.sourceDir, run.workDir);
  await mkdir(run.workDir, { recursive: true });
  run.log.line(`Build ${build.id} of app ${build.app}, source ${build.sourceSha256}`);
  const archiveFile = path.join(run.workDir, build.sourceKey.endsWith(".zip") ? "source.zip" : "source.tar.gz");
  const summary = await fetchSource(ctx.store, build.sourceKey, build.sourceSha256, archiveFile, run.sourceDir, {
    maxUnpackedBytes: ctx.config.MAX_UNPACKED_BYTES,
    maxEntries: ctx.config.MAX_SOURCE_FILES,
  });
  run.log.line(`Source extracted: ${summary.entries} entries, ${summary.unpackedBytes} bytes`);
  // The files' bytes go to the app's resource cache, so the next deploy uploads only what changed.
  const indexed = await indexResources(ctx.store, build.app, run.sourceDir);
  if (indexed.added > 0) run.log.line(`Cached ${indexed.added} new source files (${indexed.bytes} bytes) for later deploys`);

  const sandbox = await prepareBuildSandbox(ctx.config, build.id, run.sourceDir, ctx.sandboxResolvConf);
  await sandbox.own(run.sourceDir);
  run.log.line(sandbox.mode === "on" ? `Build commands run sandboxed as uid ${sandbox.spec.uid}` : "Build commands run WITHOUT a sandbox (SANDBOX=off)");

  const appRecord = await ctx.apps.get(build.app);
  const options = await loadBuildOptions(run.sourceDir, appRecord?.buildEnv ?? {}, (line) => run.log.line(line));
  const platform = await detectPlatform(run.sourceDir, options.PLATFORM_NAME);
  run.log.line(options.PLATFORM_NAME ? `Platform: ${platform.name} (PLATFORM_NAME)` : `Detected platform: ${platform.name}`);
  // Build options are the build's environment too, as in Oryx; Slipway's own secrets never are.
  const baseEnv = { ...buildEnvironment(ctx.config, sandbox), ...options };
  const execute: PlatformContext["run"] = (command, args, runOptions = {}) =>
    runCommand(command, args, sandbox, {
      cwd: runOptions.cwd ?? run.sourceDir,
      env: runOptions.env ?? baseEnv,
      label: runOptions.label ?? command,
      onLine: (line) => run.log.line(line),
      signal: run.signal,
    });
  await runBuildHooks("PRE", run.sourceDir, options, baseEnv, execute, (line) => run.log.line(line));
  const dependencyCache = new DependencyCache({
    store: ctx.store,
    digests: ctx.cacheDigests,
    app: build.app,
    env: baseEnv,
    compression: ctx.config.ARTIFACT_COMPRESSION,
    enabled: !run.noCache,
    log: (line) => run.log.line(line),
    warn: (line) => {
      run.log.line(line);
      ctx.logger.warn({ buildId: build.id, app: build.app }, line);
    },
  });
  const cache: LayerCache = {
    restore: async (key, dir) => {
      const restored = await dependencyCache.restore(key, dir, path.join(run.workDir, `cache-${key.layer}.restore`));
      if (restored) await sandbox.own(dir);
      return restored;
    },
    save: (key, dir) => dependencyCache.save(key, dir, path.join(run.workDir, `cache-${key.layer}`)),
  };
  const tool = async (spec: ToolSpec) => {
    const dir = await ctx.tools.ensure(spec, (line) => run.log.line(line), run.signal);
    sandbox.allowReading(dir);
    return dir;
  };
  const result = await platform.build({
    sourceDir: run.sourceDir,
    baseEnv,
    options,
    cache,
    tool,
    allowReading: (dir) => sandbox.allowReading(dir),
    toolchains: { pythonInstallsDir: ctx.config.PYTHON_INSTALLS_DIR },
    log: (line) => run.log.line(line),
    run: execute,
  });
  await runBuildHooks("POST", run.sourceDir, options, baseEnv, execute, (line) => run.log.line(line));
  if (run.signal.aborted) throw run.signal.reason;

  const compression = ctx.config.ARTIFACT_COMPRESSION;
  const outputFileName = `output${ARCHIVE_EXTENSIONS[compression]}`;
  run.log.line(`Packing the build output (dependencies included) into ${outputFileName} ...`);
  const artifactFile = path.join(run.workDir, outputFileName);
  const packed = await packDirectory(run.sourceDir, artifactFile, compression).catch((error: Error) => {
    throw error instanceof UnsafeArchiveError ? new BuildFailure(`the build output could never be restored: ${error.message}`) : error;
  });
  run.log.line(`Packed ${outputFileName}: ${packed.bytes} bytes (${packed.unpackedBytes} unpacked, ${packed.entries} entries), sha256 ${packed.sha256}`);
  if (packed.bytes > ctx.config.MAX_OUTPUT_BYTES) {
    throw new BuildFailure(`the build output is ${packed.bytes} bytes packed, over MAX_OUTPUT_BYTES (${ctx.config.MAX_OUTPUT_BYTES})`);
  }
  if (run.signal.aborted) throw run.signal.reason;

  const manifest: BuildManifest = {
    platformName: result.name,
    ...result.manifest,
    ...(result.frameworks.length ? { frameworks: result.frameworks } : {}),
    compressDestinationDir: true,
    operationId: build.id,
    sourceDirectoryInBuildContainer: run.sourceDir,
    appName: build.app,
    buildId: build.id,
    sourceSha256: build.sourceSha256,
    outputFileName,
    outputSha256: packed.sha256,
    outputBytes: packed.bytes,
    outputUnpackedBytes: packed.unpackedBytes,
    outputEntryCount: packed.entries,
    ...(result.startupCommand ? { startupCommand: result.startupCommand } : {}),
    buildStartedAt: run.startedAt,
    buildFinishedAt: new Date().toISOString(),
    other: {},
  };
  const { artifactKey } = await uploadBuildOutput(ctx, build, artifactFile, manifest, run.signal);
  run.log.line(`Uploaded ${artifactKey} and ${manifestKey}`);
  return { manifest, manifestKey, artifactKey };
}
