import { UnrecoverableError, type Job } from "bullmq";
import { ConfigError, JobName } from "@slipway/shared";
import { createBuildProcessor } from "./build.processor";
import type { WorkerContext } from "./context";
import { createGcProcessor } from "./gc.processor";

export type Processor = (job: Job) => Promise<unknown>;

/** What handles each job name: a name without a handler here does not compile. */
export function createProcessors(ctx: WorkerContext) {
  return {
    [JobName.build]: createBuildProcessor(ctx),
    [JobName.gc]: createGcProcessor(ctx),
  } satisfies Record<JobName, Processor>;
}

/**
 * Refuses a processor map that leaves a job name unhandled. The compiler checks the map against
 * the names it was built with; this catches a @slipway/shared with more names than that at run
 * time, before any job of that name is taken and failed.
 */
export function checkProcessors(processors: Partial<Record<string, Processor>>, names: readonly string[] = Object.values(JobName)): void {
  const missing = names.filter((name) => typeof processors[name] !== "function");
  if (missing.length) {
    throw new ConfigError(`this build worker has no processor for job ${missing.map((name) => `"${name}"`).join(", ")}: it cannot run every job the queues carry`);
  }
}

/** One queue's processor: each job goes to the processor of its name; an unknown name fails for good. */
export function dispatch(processors: Partial<Record<string, Processor>>): Processor {
  return async (job) => {
    const processor = Object.hasOwn(processors, job.name) ? processors[job.name] : undefined;
    if (!processor) throw new UnrecoverableError(`no processor for job "${job.name}" (this worker handles ${Object.keys(processors).join(", ")})`);
    return processor(job);
  };
}
