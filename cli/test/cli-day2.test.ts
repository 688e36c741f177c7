import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { freePort } from "@slipway/shared";
import { labelApp } from "../../test/harness/apps";
import { uniqueApp } from "../../test/harness/env";
import { useStack } from "../../test/harness/use-stack";
import { writeTree } from "../../test/harness/stack";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bin = path.join(root, "node_modules/.bin/slipway");
const { stack, work, spawnAgent } = useStack("cli-day2");

/** Runs the real `slipway` binary in `cwd` (its stdin and output are pipes, never a terminal). */
function slipway(args: string[], cwd = work): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env: { ...process.env, SLIPWAY_URL: stack.baseUrl }, timeout: 170_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const appStatus = async (app: string) => (await fetch(`${stack.baseUrl}/v1/apps/${app}`)).status;

describe("slipway day-2 commands against a real stack", () => {
  it("apps create writes slipway.toml; deploy there waits until the instance runs the release, and fails when the release cannot start", async () => {
    const app = uniqueApp("clirun");
    const dir = await writeTree(path.join(work, app), { "app.py": labelApp("one") });
    const created = await slipway(["apps", "create", app], dir);
    expect(created.code).toBe(0);
    expect(await readFile(path.join(dir, "slipway.toml"), "utf8")).toBe(`app = "${app}"\n`);
    spawnAgent({ APP: app, INSTANCE_ID: "i-1", PORT: String(await freePort()), RUNTIME_ROOT: path.join(work, `runtime-${app}`) });

    const deployed = await slipway(["deploy"], dir);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain("build succeeded: release v1");
    expect(deployed.stdout).toMatch(/^ {2}i-1: running v1$/m);
    expect(deployed.stdout).toContain("release v1 is running");
    const instances = JSON.parse((await slipway(["instances", "--json"], dir)).stdout) as { instanceId: string; state: string; release: number }[];
    expect(instances).toEqual([expect.objectContaining({ instanceId: "i-1", state: "running", release: 1 })]);

    await writeTree(dir, { "app.py": labelApp("broken", { failToStart: true }) });
    const broken = await slipway(["deploy", "--json"], dir);
    expect(broken.code).toBe(1);
    expect(broken.stderr.trim().split("\n").at(-1)).toMatch(new RegExp(`^slipway: release v2 of ${app} failed on i-1: `));
    const report = JSON.parse(broken.stdout) as { release: number; outcome: string; build: { status: string } };
    expect(report).toMatchObject({ release: 2, outcome: "failed", build: { status: "succeeded" } });
  }, 240_000);

  it("refuses to deploy to an app that does not exist unless --create, with one readable line", async () => {
    const app = uniqueApp("clitypo");
    const dir = await writeTree(path.join(work, app), { "app.py": "print('hi')\n" });
    const refused = await slipway(["deploy", dir, "--app", app]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`slipway: app ${app} does not exist: check the name, or pass --create to create it\n`);
    expect(await appStatus(app)).toBe(404);
    const noApp = await slipway(["deploy", dir], dir);
    expect(noApp.code).toBe(1);
    expect(noApp.stderr).toMatch(/^slipway: no app given: pass --app NAME/);
  });

  it("apps delete refuses without --yes when nobody can confirm; --yes deletes; apps list --json parses", async () => {
    const app = uniqueApp("clidel");
    expect((await slipway(["apps", "create", app, "--no-file", "--json"])).code).toBe(0);
    expect((JSON.parse((await slipway(["apps", "--json"])).stdout) as { name: string }[]).map((a) => a.name)).toContain(app);
    const refused = await slipway(["apps", "delete", app]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`slipway: not deleting app ${app} without --yes: there is no terminal to confirm on\n`);
    expect(await appStatus(app)).toBe(200);
    const deleted = await slipway(["apps", "delete", app, "--yes", "--json"]);
    expect(deleted.code).toBe(0);
    expect(JSON.parse(deleted.stdout)).toBeTypeOf("object");
    expect(await appStatus(app)).toBe(404);
  });

  it("finds slipway.toml in a subdirectory up to the git root, never past it", async () => {
    const app = uniqueApp("clifile");
    const repo = path.join(work, `repo-${app}`);
    await mkdir(path.join(repo, ".git"), { recursive: true });
    await mkdir(path.join(repo, "src/deep"), { recursive: true });
    expect((await slipway(["apps", "create", app], repo)).code).toBe(0);
    const fromSubdir = await slipway(["releases", "--json"], path.join(repo, "src/deep"));
    expect(fromSubdir.code, fromSubdir.stderr).toBe(0);
    expect(JSON.parse(fromSubdir.stdout)).toEqual([]);
    // A repository inside that one is its own project: the outer app file does not reach into it.
    const nested = path.join(repo, "vendor/other");
    await mkdir(path.join(nested, ".git"), { recursive: true });
    expect((await slipway(["releases"], nested)).stderr).toMatch(/^slipway: no app given/);
  });

  it("prints a bash completion script bash accepts", async () => {
    const script = await new Promise<string>((resolve, reject) =>
      execFile("bash", ["-c", `source <(${bin} completion bash) && complete -p slipway && COMP_WORDS=(slipway apps de) COMP_CWORD=2 && _slipway && echo "\${COMPREPLY[*]}"`], (error, stdout, stderr) =>
        error ? reject(new Error(stderr)) : resolve(stdout),
      ),
    );
    expect(script).toBe("complete -F _slipway slipway\ndelete\n");
  });

  /** Runs `script` in `shell` (HOME in the test's directory: no user rc files); answers what it printed. */
  const inShell = (shell: string, script: string) =>
    new Promise<string>((resolve, reject) =>
      execFile(shell, ["-c", script], { env: { ...process.env, HOME: work } }, (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout))),
    );

  it("prints zsh and fish completion scripts those shells load and answer from", async () => {
    // zsh runs the bash completion through bashcompinit, which indexes COMP_WORDS from 0 (ksharrays).
    const zsh = await inShell("zsh", `source <(${bin} completion zsh) && setopt ksharrays && COMP_WORDS=(slipway config "") COMP_CWORD=2 && _slipway && print -l "\${COMPREPLY[@]}"`);
    expect(zsh.trim().split("\n")).toEqual(expect.arrayContaining(["get", "set", "unset"]));
    const fish = await inShell("fish", `${bin} completion fish | source; complete -C "slipway deploy --ti"; complete -C "slipway config "`);
    expect(fish).toMatch(/^--timeout\t/m);
    expect(fish).toMatch(/^unset\t/m);
  });

  it("names the shells it knows when asked for another", async () => {
    expect((await slipway(["completion", "tcsh"])).stderr).toBe('slipway: no completion for "tcsh": choose bash, zsh, fish\n');
  });
});
