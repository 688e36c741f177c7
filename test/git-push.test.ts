import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { labelApp } from "./harness/apps";
import { uniqueApp } from "./harness/env";
import { eventually } from "./harness/local-stack";
import { useStack } from "./harness/use-stack";

const TOKEN = "git-push-test-token";
const { stack, work, serve } = useStack("git-push", { env: (dir) => ({ API_TOKEN: TOKEN, GIT_ROOT: path.join(dir, "repositories") }) });

interface GitResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The real git client, asynchronously: the API answering it runs in this process. No prompt, and
 * none of this machine's git config (a credential helper would remember the token).
 */
function git(cwd: string, ...args: string[]): Promise<GitResult> {
  const child = spawn("git", args, {
    cwd,
    env: {
      PATH: process.env.PATH!,
      HOME: work,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_TERMINAL_PROMPT: "0",
      GIT_AUTHOR_NAME: "Pusher",
      GIT_AUTHOR_EMAIL: "pusher@example.test",
      GIT_COMMITTER_NAME: "Pusher",
      GIT_COMMITTER_EMAIL: "pusher@example.test",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function succeed(cwd: string, ...args: string[]): Promise<GitResult> {
  const result = await git(cwd, ...args);
  if (result.code !== 0) throw new Error(`git ${args.join(" ")} exited ${result.code}:\n${result.stderr}`);
  return result;
}

const repositoryUrl = (app: string, password = TOKEN) => `${stack.baseUrl.replace("http://", `http://deployer:${password}@`)}/git/${app}.git`;
// git pads sideband lines with spaces to clear the terminal line.
const remoteLines = (output: string) =>
  output
    .split("\n")
    .map((line) => line.trimEnd())
    .filter((line) => line.startsWith("remote: "));

const waitForBody = (url: string, body: string) =>
  eventually(
    async () => {
      const response = await fetch(url).catch(() => undefined);
      return response?.ok && (await response.text()) === body ? body : undefined;
    },
    90_000,
    `${url} to answer ${body}`,
  );

describe("deploy by git push", () => {
  it("clones the app's empty repository, builds each push to the default branch and serves the pushed commit", async () => {
    const app = uniqueApp("gitpush");
    const clone = path.join(work, app);
    await succeed(work, "clone", repositoryUrl(app), clone);

    await writeFile(path.join(clone, "app.py"), labelApp("pushed-v1"));
    await succeed(clone, "add", "app.py");
    await succeed(clone, "commit", "-q", "-m", "first");
    const first = await succeed(clone, "push", "origin", "HEAD");
    const firstLines = remoteLines(first.stderr);
    expect(firstLines.some((line) => /remote: slipway: build \S+ queued/.test(line)), first.stderr).toBe(true);
    expect(firstLines, first.stderr).toContain("remote: Build succeeded: release v1");
    expect(firstLines.at(-1), first.stderr).toBe(`remote: slipway: deployed ${app} release v1`);

    const { url } = await serve(app);
    await waitForBody(url, "pushed-v1");

    await writeFile(path.join(clone, "app.py"), labelApp("pushed-v2"));
    await succeed(clone, "commit", "-q", "-am", "second");
    const second = await succeed(clone, "push", "origin", "HEAD");
    expect(remoteLines(second.stderr).at(-1), second.stderr).toBe(`remote: slipway: deployed ${app} release v2`);
    await waitForBody(url, "pushed-v2");

    // Another branch is stored, not built.
    const branch = await succeed(clone, "push", "origin", "HEAD:refs/heads/feature");
    expect(remoteLines(branch.stderr).at(-1), branch.stderr).toBe("remote: slipway: only pushes to main are built; nothing to build");

    // The repository holds both commits: a fresh clone gets the history the builds came from.
    const again = path.join(work, `${app}-again`);
    await succeed(work, "clone", "-q", repositoryUrl(app), again);
    expect((await succeed(again, "log", "--format=%s")).stdout.trim().split("\n")).toEqual(["second", "first"]);
  });

  it("ends a push whose build fails with the failure, and releases nothing", async () => {
    const app = uniqueApp("gitfail");
    const clone = path.join(work, app);
    await succeed(work, "clone", "-q", repositoryUrl(app), clone);
    // Nothing a platform recognises: the build fails at detection.
    await writeFile(path.join(clone, "notes.txt"), "not an app\n");
    await succeed(clone, "add", "notes.txt");
    await succeed(clone, "commit", "-q", "-m", "no app here");
    const push = await succeed(clone, "push", "origin", "HEAD");
    const lines = remoteLines(push.stderr);
    expect(lines.at(-1), push.stderr).toMatch(/^remote: slipway: build \S+ failed: \S/);
    const releases = await fetch(`${stack.baseUrl}/v1/apps/${app}/releases`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(await releases.json()).toEqual([]);
  });

  it("refuses a wrong token, with HTTP Basic's challenge", async () => {
    const app = uniqueApp("gitauth");
    const refused = await git(work, "ls-remote", repositoryUrl(app, "not-the-token"));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Authentication failed/);

    const response = await fetch(`${stack.baseUrl}/git/${app}.git/info/refs?service=git-upload-pack`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Basic realm="slipway"');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
  });

  it("answers paths that are not git's smart protocol, and bad app names, with the catalogue's errors", async () => {
    const auth = { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` };
    const dumb = await fetch(`${stack.baseUrl}/git/some-app.git/objects/info/packs`, { headers: auth });
    expect(dumb.status).toBe(404);
    expect(((await dumb.json()) as { error: { code: string } }).error.code).toBe("not_found");
    const badName = await fetch(`${stack.baseUrl}/git/Bad_Name.git/info/refs?service=git-upload-pack`, { headers: auth });
    expect(badName.status).toBe(400);
    expect(((await badName.json()) as { error: { code: string } }).error.code).toBe("invalid_app_name");
  });
});
