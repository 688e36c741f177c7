import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { APP_NAME_PATTERN } from "@slipway/shared";
import { git, spawnGit } from "./git-command";

const NEW_REPOSITORY_BRANCH = "main";

/**
 * The apps' bare repositories, `<GIT_ROOT>/<app>.git`, created on first use. Only app names that
 * passed the shared pattern become paths, so a name can never climb out of the root.
 */
export class GitRepositories {
  private readonly creating = new Map<string, Promise<string>>();

  constructor(readonly root: string) {}

  pathOf(app: string): string {
    if (!APP_NAME_PATTERN.test(app)) throw new Error(`not an app name: ${JSON.stringify(app)}`);
    return path.join(this.root, `${app}.git`);
  }

  /** The app's repository, created empty (with no hook or sample of git's templates) if missing. */
  ensure(app: string): Promise<string> {
    let pending = this.creating.get(app);
    if (!pending) {
      pending = this.create(app).finally(() => this.creating.delete(app));
      this.creating.set(app, pending);
    }
    return pending;
  }

  private async create(app: string): Promise<string> {
    const dir = this.pathOf(app);
    if (await exists(path.join(dir, "HEAD"))) return dir;
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await git(this.root, ["init", "--quiet", "--bare", "--template=", `--initial-branch=${NEW_REPOSITORY_BRANCH}`, dir]);
    return dir;
  }
}

/**
 * The branch whose pushes build: the one HEAD names. A repository whose HEAD branch does not exist
 * yet takes the first branch pushed to it instead, so a first `git push slipway master` from a
 * repository whose default is not `main` builds too.
 */
export async function defaultBranch(repo: string, pushedBranches: string[]): Promise<string> {
  const head = (await git(repo, ["symbolic-ref", "HEAD"])).trim();
  if (pushedBranches.includes(head) || (await refExists(repo, head))) return head;
  const first = pushedBranches[0];
  if (!first || !(await refExists(repo, first))) return head;
  await git(repo, ["symbolic-ref", "HEAD", first]);
  return first;
}

async function refExists(repo: string, ref: string): Promise<boolean> {
  return git(repo, ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]).then(
    () => true,
    () => false,
  );
}

/** The tree of `commit` as a .tar.gz stream, as a source upload would send it; `done` rejects with git's complaint. */
export function archiveCommit(repo: string, commit: string): { stream: Readable; done: Promise<void> } {
  const child = spawnGit(repo, ["archive", "--format=tar.gz", commit]);
  child.stdin.end();
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`git archive ${commit}: ${stderr.trim() || `exit ${code}`}`))));
  });
  return { stream: child.stdout, done };
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );
