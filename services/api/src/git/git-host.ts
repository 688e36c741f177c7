import type { Request, Response } from "express";
import type { ApiContext } from "../context";
import { runHttpBackend } from "./http-backend";
import { buildOnPush } from "./push-build";
import { PushRelay } from "./push-relay";
import { GitRepositories } from "./repositories";

export type GitService = "info/refs" | "git-upload-pack" | "git-receive-pack";

/**
 * The apps' git repositories over smart HTTP. They live on this API's disk (`GIT_ROOT`), not in
 * object storage: git needs a real filesystem (atomic renames, lock files) for every push, and a
 * copy down and back up around each one would need a lock of its own. Losing a repository loses
 * history, not deployability: every pushed tree is stored as a build's source like any upload.
 */
export class GitHost {
  private readonly repositories: GitRepositories;
  private readonly relay: PushRelay;

  constructor(private readonly ctx: ApiContext) {
    this.repositories = new GitRepositories(ctx.config.GIT_ROOT);
    this.relay = new PushRelay(buildOnPush(ctx, this.repositories));
  }

  /** Answers one git request for `app`, creating its repository (empty) on first use. */
  async serve(req: Request, res: Response, app: string, service: GitService): Promise<void> {
    await this.repositories.ensure(app);
    const request = { projectRoot: this.repositories.root, pathInfo: `/${app}.git/${service}`, remoteUser: String(res.locals.gitUser) };
    if (service !== "git-receive-pack") return runHttpBackend(req, res, this.ctx.logger, { ...request, config: {} });
    const push = await this.relay.prepare(app);
    const config = {
      ...push.config,
      // A push may be no larger than an upload, and git checks every object it is sent.
      "receive.maxInputSize": String(this.ctx.config.MAX_SOURCE_BYTES),
      "receive.fsckObjects": "true",
    };
    try {
      await runHttpBackend(req, res, this.ctx.logger, { ...request, config, env: push.env });
    } finally {
      push.release();
    }
  }

  close(): Promise<void> {
    return this.relay.close();
  }
}
