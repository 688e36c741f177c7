import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import type { AppResponse, ReleaseResponse } from "@slipway/shared/light";
import { ApiClient, CliError } from "./client";
import { deploy } from "./commands/deploy";
import { showAppLogs, type AppLogOptions } from "./commands/app-logs";
import { followLog } from "./commands/logs";
import { keepSecret, print, scrub } from "./output";

keepSecret(process.env.SLIPWAY_TOKEN);

// Options read from the environment with .env(), not as defaults: help shows a default's value.
const program = new Command("slipway")
  .description("Deploy and watch apps on a Slipway server")
  .version("0.1.0")
  .addOption(new Option("--url <url>", "the Slipway API").env("SLIPWAY_URL").default("http://127.0.0.1:8080"))
  .addOption(new Option("--token <token>", "API token").env("SLIPWAY_TOKEN"))
  .option("--json", "print JSON for scripts instead of tables", false)
  .configureOutput({ writeOut: (text) => process.stdout.write(scrub(text)), writeErr: (text) => process.stderr.write(scrub(text)) })
  .showHelpAfterError()
  .exitOverride();

const client = () => {
  const { url, token } = program.opts<{ url: string; token?: string }>();
  keepSecret(token);
  return new ApiClient({ url, ...(token ? { token } : {}) });
};
const json = () => program.opts<{ json: boolean }>().json;
const appPath = (app: string) => `/v1/apps/${encodeURIComponent(app)}`;

program
  .command("deploy [dir]")
  .description("pack a directory (honouring .gitignore and .slipwayignore), upload it with progress and build it")
  .requiredOption("-a, --app <name>", "the app to deploy")
  .option("-f, --follow", "follow the build log to the end and show the release and instances", false)
  .option("--no-match", "upload every file, even those the server already holds")
  .action(async (dir: string | undefined, options: { app: string; follow: boolean; match: boolean }) => {
    process.exitCode = await deploy(client(), dir ?? ".", { ...options, json: json() });
  });

program
  .command("apps")
  .description("list apps")
  .action(async () => {
    print(await client().json("GET", "/v1/apps?limit=100"), json(), [
      ["NAME", (r) => r.name],
      ["UPDATED", (r) => r.updatedAt],
    ]);
  });

// `builds logs <id>` is the subcommand below: an app named "logs" cannot be listed this way.
const builds = program
  .command("builds <app>")
  .description("an app's builds, newest first")
  .option("-n, --limit <n>", "how many", "20")
  .action(async (app: string, options: { limit: string }) => {
    print(await client().json("GET", `${appPath(app)}/builds?limit=${encodeURIComponent(options.limit)}`), json(), [
      ["ID", (r) => r.id],
      ["STATUS", (r) => r.status],
      ["RELEASE", (r) => (r.release ? `v${r.release}` : "")],
      ["DURATION", (r) => (r.startedAt && r.finishedAt ? `${((Date.parse(String(r.finishedAt)) - Date.parse(String(r.startedAt))) / 1000).toFixed(1)}s` : "")],
      ["CREATED", (r) => r.createdAt],
    ]);
  });

/** The API names builds with UUIDs: such an argument to `logs` is a build, as `logs` took before app logs. */
const BUILD_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function buildLog(buildId: string, follow: boolean): Promise<void> {
  if (follow) {
    const status = await followLog(client(), buildId, (line) => process.stdout.write(`${line}\n`));
    if (status !== "succeeded") process.exitCode = 1;
    return;
  }
  process.stdout.write(await (await client().request("GET", `/v1/builds/${encodeURIComponent(buildId)}/logs`)).text());
}

program
  .command("logs <app>")
  .description("an app's own output (stdout, stderr) and its instances' lifecycle lines; --tail follows it. Given a build id, that build's log (as `builds logs`)")
  .option("-t, --tail", "keep following new lines until interrupted", false)
  .option("-i, --instance <id>", "only this instance's lines")
  .option("-s, --since <when>", "lines from an ISO time, a duration ago (15m, 2h, 1d) or after a line id")
  .option("-n, --limit <n>", "at most this many lines (default 500, the newest unless --since)")
  .option("-f, --follow", "with a build id: stream the build log until the build ends", false)
  .action(async (target: string, options: AppLogOptions & { follow: boolean }) => {
    if (BUILD_UUID.test(target)) return buildLog(target, options.follow);
    await showAppLogs(client(), target, { ...options, json: json() }, (text) => process.stdout.write(scrub(text)));
  });

builds
  .command("logs <buildId>")
  .description("a build's log; --follow streams it until the build ends")
  .option("-f, --follow", "stream until the build ends", false)
  .action(async (buildId: string, options: { follow: boolean }) => buildLog(buildId, options.follow));

program
  .command("releases <app>")
  .description("an app's releases, newest first")
  .action(async (app: string) => {
    print(await client().json("GET", `${appPath(app)}/releases?limit=100`), json(), [
      ["VERSION", (r) => `v${r.version}`],
      ["BUILD", (r) => r.buildId],
      ["REASON", (r) => r.reason],
      ["STATE", (r) => r.state],
      ["CREATED", (r) => r.createdAt],
    ]);
  });

program
  .command("rollback <app> [version]")
  .description("release an earlier version again (default: the one before the current)")
  .action(async (app: string, version: string | undefined) => {
    const api = client();
    let target = version === undefined ? undefined : Number(version.replace(/^v/, ""));
    if (target === undefined) {
      const releases = await api.json<ReleaseResponse[]>("GET", `${appPath(app)}/releases?limit=2`);
      if (releases.length < 2) throw new CliError(`${app} has no earlier release to roll back to`);
      target = releases[1]!.version;
    }
    if (!Number.isInteger(target) || target < 1) throw new CliError(`"${version}" is not a release version`);
    const release = await api.json<ReleaseResponse>("POST", `${appPath(app)}/releases`, { version: target });
    if (json()) print(release, true);
    else process.stdout.write(`rolled back ${app} to v${target}'s build: release v${release.version}\n`);
  });

program
  .command("instances <app>")
  .description("each instance's state, release and last heartbeat")
  .action(async (app: string) => {
    print(await client().json("GET", `${appPath(app)}/instances`), json(), [
      ["INSTANCE", (r) => r.instanceId],
      ["STATE", (r) => r.state],
      ["RELEASE", (r) => (r.release ? `v${r.release}` : "")],
      ["HEARTBEAT", (r) => r.lastHeartbeatAt],
      ["ERROR", (r) => (r.error ? String(r.error).split("\n")[0] : "")],
    ]);
  });

const config = program.command("config").description("an app's settings: env, buildEnv, startupCommand");
config
  .command("get <app>")
  .action(async (app: string) => {
    const record = await client().json<AppResponse>("GET", appPath(app));
    print({ env: record.env, buildEnv: record.buildEnv, startupCommand: record.startupCommand ?? null }, true);
  });
config
  .command("set <app> <assignments...>")
  .description("KEY=VALUE sets env; build.KEY=VALUE sets buildEnv; startupCommand=... sets the start command")
  .action(async (app: string, assignments: string[]) => {
    const api = client();
    const current = await api.json<Pick<AppResponse, "env" | "buildEnv">>("GET", appPath(app)).catch(() => ({ env: {}, buildEnv: {} }));
    const change: { env: Record<string, string>; buildEnv: Record<string, string>; startupCommand?: string } = { env: { ...current.env }, buildEnv: { ...current.buildEnv } };
    for (const assignment of assignments) {
      const eq = assignment.indexOf("=");
      if (eq < 1) throw new CliError(`"${assignment}" is not KEY=VALUE`);
      const key = assignment.slice(0, eq);
      const value = assignment.slice(eq + 1);
      if (key === "startupCommand") change.startupCommand = value;
      else if (key.startsWith("build.")) change.buildEnv[key.slice(6)] = value;
      else change.env[key] = value;
    }
    const updated = await api.json("PUT", appPath(app), change);
    print(json() ? updated : { ok: true }, json());
  });

program
  .command("up")
  .description("run the whole stack on this machine (the same as npm start)")
  .action(async () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts/local-stack.ts")], { cwd: root, stdio: "inherit" });
    process.on("SIGINT", () => child.kill("SIGINT"));
    process.on("SIGTERM", () => child.kill("SIGTERM"));
    process.exitCode = await new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; usage errors were already printed by commander.
    process.exitCode = error.exitCode;
  } else {
    process.stderr.write(scrub(`slipway: ${(error as Error).message}\n`));
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  }
}
