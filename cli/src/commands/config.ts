import type { Command } from "commander";
import type { AppResponse } from "@slipway/shared/light";
import { CliError } from "../client";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";

/** Settings `config set` writes with PUT: everything that is not the app's own environment. */
const TOP_LEVEL = new Set(["startupCommand", "releaseCommand"]);
const BUILD_PREFIX = "build.";

interface Changes {
  env: Record<string, string>;
  buildEnv: Record<string, string>;
  top: Record<string, string>;
}

function parseAssignments(assignments: string[]): Changes {
  const changes: Changes = { env: {}, buildEnv: {}, top: {} };
  for (const assignment of assignments) {
    const eq = assignment.indexOf("=");
    if (eq < 1) throw new CliError(`"${assignment}" is not KEY=VALUE`);
    const key = assignment.slice(0, eq);
    const value = assignment.slice(eq + 1);
    if (TOP_LEVEL.has(key)) changes.top[key] = value;
    else if (key.startsWith(BUILD_PREFIX)) changes.buildEnv[key.slice(BUILD_PREFIX.length)] = value;
    else changes.env[key] = value;
  }
  return changes;
}

/**
 * `config get | set | unset`. The app's environment changes through PATCH …/config, which makes a
 * `config` release; buildEnv and the commands through PUT, which only the next build or release reads.
 */
export function registerConfig(program: Command, cli: CliContext): void {
  const config = program.command("config").description("an app's settings: env, buildEnv (build.KEY), startupCommand, releaseCommand");

  config
    .command("get")
    .description("the settings, as KEY=VALUE lines (build.KEY for buildEnv); --json: the app as the API shows it")
    .addOption(appOption())
    .action(async (options: { app?: string }) => {
      const app = await cli.app(options);
      const record = await cli.client().json<AppResponse>("GET", appPath(app));
      if (cli.json()) return print(record, true);
      const lines = [
        ...Object.entries(record.env).map(([k, v]) => `${k}=${v}`),
        ...Object.entries(record.buildEnv).map(([k, v]) => `${BUILD_PREFIX}${k}=${v}`),
        ...[...TOP_LEVEL].flatMap((key) => (typeof (record as Record<string, unknown>)[key] === "string" ? [`${key}=${(record as Record<string, unknown>)[key]}`] : [])),
      ];
      process.stdout.write(lines.length ? `${lines.join("\n")}\n` : "");
    });

  config
    .command("set <assignments...>")
    .description("KEY=VALUE sets env; build.KEY=VALUE sets buildEnv; startupCommand=… and releaseCommand=… set the commands")
    .addOption(appOption())
    .action(async (assignments: string[], options: { app?: string }) => {
      const changes = parseAssignments(assignments);
      await apply(cli, await cli.app(options), changes, []);
    });

  config
    .command("unset <keys...>")
    .description("remove env keys (build.KEY removes a buildEnv key)")
    .addOption(appOption())
    .action(async (keys: string[], options: { app?: string }) => {
      const top = keys.find((key) => TOP_LEVEL.has(key));
      if (top) throw new CliError(`${top} cannot be unset, only set to another command`);
      await apply(cli, await cli.app(options), { env: {}, buildEnv: {}, top: {} }, keys);
    });
}

async function apply(cli: CliContext, app: string, changes: Changes, unset: string[]): Promise<void> {
  const api = cli.client();
  const envUnset = unset.filter((key) => !key.startsWith(BUILD_PREFIX));
  const buildUnset = unset.filter((key) => key.startsWith(BUILD_PREFIX)).map((key) => key.slice(BUILD_PREFIX.length));
  let updated: AppResponse | undefined;
  if (Object.keys(changes.buildEnv).length || buildUnset.length || Object.keys(changes.top).length) {
    // Revealed: a masked secret sent back would replace the real value.
    const current = await api.json<AppResponse>("GET", `${appPath(app)}?reveal=1`);
    const buildEnv = { ...current.buildEnv, ...changes.buildEnv };
    for (const key of buildUnset) delete buildEnv[key];
    updated = await api.json<AppResponse>("PUT", appPath(app), { buildEnv, ...changes.top });
  }
  if (Object.keys(changes.env).length || envUnset.length) {
    updated = await api.json<AppResponse>("PATCH", `${appPath(app)}/config`, { set: changes.env, unset: envUnset });
  }
  if (cli.json()) print(updated, true);
  else process.stdout.write(`updated ${app}'s config\n`);
}
