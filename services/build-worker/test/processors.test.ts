import { UnrecoverableError, type Job } from "bullmq";
import { ConfigError, JobName } from "@slipway/shared";
import { describe, expect, it } from "vitest";
import { checkProcessors, dispatch, type Processor } from "../src/processors";

const job = (name: string) => ({ name, data: {} }) as Job;

describe("the worker's processor map", () => {
  it("refuses to start without a processor for every job name", () => {
    const handled: Processor = async () => "done";
    expect(() => checkProcessors({ [JobName.build]: handled, [JobName.gc]: handled })).not.toThrow();
    expect(() => checkProcessors({ [JobName.build]: handled })).toThrow(ConfigError);
    expect(() => checkProcessors({ [JobName.build]: handled, [JobName.gc]: handled }, ["build", "gc", "export"])).toThrow(/no processor for job "export"/);
  });

  it("hands each job to the processor of its name; an unknown name fails for good", async () => {
    const processor = dispatch({ [JobName.build]: async () => "built", [JobName.gc]: async () => "collected" });
    expect(await processor(job("gc"))).toBe("collected");
    expect(await processor(job("build"))).toBe("built");
    await expect(processor(job("toString"))).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(processor(job("deploy"))).rejects.toThrow(/no processor for job "deploy" \(this worker handles build, gc\)/);
  });
});
