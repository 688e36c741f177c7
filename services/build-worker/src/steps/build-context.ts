import { rm } from "node:fs/promises";
import type { Build } from "@slipway/shared";
import type { WorkerContext } from "../context";
import type { BuildPhases } from "./phases";

/** One attempt at one build, as every phase sees it. */
export interface BuildContext {
  worker: WorkerContext;
  build: Build;
  /** A line for the build log. */
  line: (text: string) => void;
  /** The extracted source; the build writes its output here, in place. */
  sourceDir: string;
  /** The worker's scratch beside it: the source archive, cache layers, the packed output. */
  workDir: string;
  startedAt: string;
  signal: AbortSignal;
  noCache: boolean;
  /** The time each phase took, for the build record and the log. */
  phases: BuildPhases;
}

/** Everything a build leaves on disk: the source tree, the work dir and the sandbox's home. */
export async function removeScratch(ctx: Pick<BuildContext, "sourceDir" | "workDir">): Promise<void> {
  await Promise.all([ctx.sourceDir, ctx.workDir, `${ctx.sourceDir}.home`].map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Stops between phases once the build was canceled, timed out or handed back. */
export function throwIfAborted(ctx: Pick<BuildContext, "signal">): void {
  if (ctx.signal.aborted) throw ctx.signal.reason;
}
