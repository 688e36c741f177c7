import { randomUUID } from "node:crypto";
import { blockingConnection } from "@slipway/shared";
import { pumpLog } from "../build-log-follower";
import { admitBuild, enqueueBuild } from "../build-service";
import type { ApiContext } from "../context";
import { storeSourceUpload } from "../source-upload";
import type { PushHandler, PushOutput, RefUpdate } from "./push-relay";
import { archiveCommit, defaultBranch, type GitRepositories } from "./repositories";

const DELETED = /^0+$/;
const BRANCH = "refs/heads/";

/**
 * What a push does, as Kudu's post-receive does: the default branch's new commit is built from its
 * tree, exactly as an uploaded .tar.gz of it would be, and released; the pusher sees the build log
 * as it is written and, last, the release or the failure. Other branches are stored, not built.
 */
export function buildOnPush(ctx: ApiContext, repositories: GitRepositories): PushHandler {
  return async (app, updates, output) => {
    const repo = repositories.pathOf(app);
    const pushed = updates.filter((update) => update.ref.startsWith(BRANCH) && !DELETED.test(update.newSha));
    const branch = await defaultBranch(
      repo,
      pushed.map((update) => update.ref),
    );
    const update = pushed.find((candidate) => candidate.ref === branch);
    if (!update) return output.say(`slipway: only pushes to ${branch.slice(BRANCH.length)} are built; nothing to build`);
    await buildCommit(ctx, repo, app, update, output);
  };
}

async function buildCommit(ctx: ApiContext, repo: string, app: string, update: RefUpdate, { say, closed }: PushOutput): Promise<void> {
  say(`slipway: building ${update.newSha.slice(0, 12)} of ${update.ref.slice(BRANCH.length)}`);
  await admitBuild(ctx);
  const archive = archiveCommit(repo, update.newSha);
  const [stored, archived] = await Promise.allSettled([storeSourceUpload(archive.stream, ctx.store, app, ctx.config.MAX_SOURCE_BYTES, "gzip"), archive.done]);
  // git's own complaint explains an empty or cut-off archive better than the upload's.
  if (archived.status === "rejected") throw archived.reason;
  if (stored.status === "rejected") throw stored.reason;
  const build = await enqueueBuild(ctx, { app, source: stored.value, deploy: true, requestId: `git-push-${randomUUID()}` });
  say(`slipway: build ${build.id} queued`);

  const blocking = blockingConnection(ctx.redis);
  let status: string | undefined;
  try {
    // A pusher who hangs up stops following; the build goes on, as an upload's does.
    status = await pumpLog(ctx, build, blocking, { write: (lines) => lines.forEach(say), quiet: () => undefined, closed });
  } finally {
    blocking.disconnect();
  }
  if (status === undefined) return;
  const finished = await ctx.builds.get(build.id);
  if (status === "succeeded" && finished?.release) say(`slipway: deployed ${app} release v${finished.release}`);
  else if (status === "succeeded") say(`slipway: build ${build.id} succeeded`);
  else say(`slipway: build ${build.id} ${status ?? finished?.status ?? "ended"}${finished?.error ? `: ${finished.error}` : ""}`);
}
