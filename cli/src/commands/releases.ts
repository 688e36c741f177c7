import type { Command } from "commander";
import type { ReleaseResponse } from "@slipway/shared/light";
import { CliError } from "../client";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";

/** `releases`, `rollback` and `instances`: what an app runs, and where. */
export function registerReleases(program: Command, cli: CliContext): void {
  program
    .command("releases")
    .description("an app's releases, newest first")
    .addOption(appOption())
    .action(async (options: { app?: string }) => {
      const app = await cli.app(options);
      print(await cli.client().json("GET", `${appPath(app)}/releases?limit=100`), cli.json(), [
        ["VERSION", (r) => `v${r.version}`],
        ["BUILD", (r) => r.buildId],
        ["REASON", (r) => r.reason],
        ["STATE", (r) => r.state],
        ["CREATED", (r) => r.createdAt],
      ]);
    });

  program
    .command("rollback")
    .description("release an earlier version's build again (default: the release before the current one)")
    .addOption(appOption())
    .option("--version <n>", "the release to go back to")
    .action(async (options: { app?: string; version?: string }) => {
      const app = await cli.app(options);
      const api = cli.client();
      let target = options.version === undefined ? undefined : Number(options.version.replace(/^v/, ""));
      if (target === undefined) {
        const releases = await api.json<ReleaseResponse[]>("GET", `${appPath(app)}/releases?limit=2`);
        if (releases.length < 2) throw new CliError(`${app} has no earlier release to roll back to`);
        target = releases[1]!.version;
      }
      if (!Number.isInteger(target) || target < 1) throw new CliError(`"${options.version}" is not a release version`);
      const release = await api.json<ReleaseResponse>("POST", `${appPath(app)}/releases`, { version: target });
      if (cli.json()) print(release, true);
      else process.stdout.write(`rolled back ${app} to v${target}'s build: release v${release.version}\n`);
    });

  program
    .command("instances")
    .description("each instance's state, release, host and address, and last heartbeat")
    .addOption(appOption())
    .action(async (options: { app?: string }) => {
      const app = await cli.app(options);
      print(await cli.client().json("GET", `${appPath(app)}/instances`), cli.json(), [
        ["INSTANCE", (r) => r.instanceId],
        ["STATE", (r) => r.state],
        ["RELEASE", (r) => (r.release ? `v${r.release}` : "")],
        ["HOST", (r) => (r.host ? String(r.host) : "")],
        ["ADDRESS", (r) => (r.address ? `${String(r.address)}:${String(r.port)}` : "")],
        ["HEARTBEAT", (r) => r.lastHeartbeatAt],
        ["ERROR", (r) => (r.error ? String(r.error).split("\n")[0] : "")],
      ]);
    });
}
