import type { Command } from "commander";
import type { BuildResponse } from "@slipway/shared/light";
import { CliError } from "../client";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";
import { followLog } from "./logs";

const buildPath = (id: string) => `/v1/builds/${encodeURIComponent(id)}`;

/** `builds list | cancel | logs` and `rebuild`. */
export function registerBuilds(program: Command, cli: CliContext): void {
  const builds = program.command("builds").description("an app's builds, one build's log, cancelling one");

  builds
    .command("list", { isDefault: true })
    .description("an app's builds, newest first (the default)")
    .addOption(appOption())
    .option("-n, --limit <n>", "how many", "20")
    .action(async (options: { app?: string; limit: string }) => {
      const app = await cli.app(options);
      print(await cli.client().json("GET", `${appPath(app)}/builds?limit=${encodeURIComponent(options.limit)}`), cli.json(), [
        ["ID", (r) => r.id],
        ["STATUS", (r) => r.status],
        ["RELEASE", (r) => (r.release ? `v${r.release}` : "")],
        ["DURATION", (r) => (r.startedAt && r.finishedAt ? `${((Date.parse(String(r.finishedAt)) - Date.parse(String(r.startedAt))) / 1000).toFixed(1)}s` : "")],
        ["CREATED", (r) => r.createdAt],
      ]);
    });

  builds
    .command("cancel <id>")
    .description("cancel a queued or running build")
    .action(async (id: string) => {
      const build = await cli.client().json<BuildResponse>("POST", `${buildPath(id)}/cancel`);
      if (cli.json()) print(build, true);
      else process.stdout.write(`build ${build.id} ${build.status}\n`);
    });

  builds
    .command("logs <id>")
    .description("a build's log; --follow streams it until the build ends (--json: one JSON object a line)")
    .option("-f, --follow", "stream until the build ends", false)
    .action(async (id: string, options: { follow: boolean }) => {
      const client = cli.client();
      const json = cli.json();
      if (options.follow) {
        const status = await followLog(client, id, (line) => process.stdout.write(json ? `${JSON.stringify({ line })}\n` : cli.output(`${line}\n`)));
        if (json) process.stdout.write(`${JSON.stringify({ status })}\n`);
        if (status !== "succeeded") throw new CliError(`build ${id} ${status}`);
        return;
      }
      const text = await (await client.request("GET", `${buildPath(id)}/logs`)).text();
      if (json) print({ buildId: id, lines: text.split("\n").filter((line, i, all) => line !== "" || i < all.length - 1) }, true);
      else process.stdout.write(cli.output(text));
    });

  program
    .command("rebuild")
    .description("build the app's latest source again")
    .addOption(appOption())
    .option("--no-cache", "ignore the dependency cache")
    .action(async (options: { app?: string; cache: boolean }) => {
      const app = await cli.app(options);
      const build = await cli.client().json<BuildResponse>("POST", `${appPath(app)}/rebuild`, { noCache: !options.cache });
      if (cli.json()) print(build, true);
      else process.stdout.write(`build ${build.id} queued for ${app}; slipway builds logs ${build.id} --follow shows it\n`);
    });
}
