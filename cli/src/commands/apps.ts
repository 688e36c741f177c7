import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import type { AppResponse } from "@slipway/shared/light";
import { APP_FILE, readAppFile, writeAppFile } from "../app-file";
import { CliError } from "../client";
import { appExists, appPath, type CliContext } from "../context";
import { print } from "../output";

/** `apps list | create | delete`: the apps themselves, and the app file that names one here. */
export function registerApps(program: Command, cli: CliContext): void {
  const apps = program.command("apps").description("list, create and delete apps");

  apps
    .command("list", { isDefault: true })
    .description("list apps (the default)")
    .action(async () => {
      print(await cli.client().json("GET", "/v1/apps?limit=100"), cli.json(), [
        ["NAME", (r) => r.name],
        ["URL", (r) => r.url ?? ""],
        ["UPDATED", (r) => r.updatedAt],
      ]);
    });

  apps
    .command("create <name>")
    .description(`create an app and write ${APP_FILE} naming it here, so later commands need no --app`)
    .option("--no-file", `do not write ${APP_FILE}`)
    .action(async (name: string, options: { file: boolean }) => {
      const client = cli.client();
      const here = options.file ? await readAppFile(process.cwd()) : undefined;
      if (here && here.app !== name) throw new CliError(`${here.file} already names app ${here.app}: remove it first, or pass --no-file`);
      if (await appExists(client, name)) throw new CliError(`app ${name} already exists: use it with --app ${name}`);
      const app = await client.json<AppResponse>("PUT", appPath(name), {});
      const file = options.file ? await writeAppFile(process.cwd(), name) : undefined;
      if (cli.json()) print(app, true);
      else process.stdout.write(`created app ${name}${file ? `; ${file} names it` : ""}\n`);
    });

  apps
    .command("delete <name>")
    .description("delete an app's records (asks first on a terminal; --yes otherwise)")
    .option("-y, --yes", "do not ask", false)
    .action(async (name: string, options: { yes: boolean }) => {
      if (!options.yes) await confirmDeletion(name);
      const deleted = await cli.client().json("DELETE", appPath(name));
      if (cli.json()) print(deleted, true);
      else process.stdout.write(`deleted app ${name}\n`);
    });
}

/** Asks for the app's name back on a terminal; elsewhere (a script, a pipe) refuses: nobody can answer. */
async function confirmDeletion(name: string): Promise<void> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) throw new CliError(`not deleting app ${name} without --yes: there is no terminal to confirm on`);
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(`Delete app ${name}, its builds and releases? Type its name to confirm: `);
    if (answer.trim() !== name) throw new CliError(`not deleting app ${name}: the answer did not match`);
  } finally {
    prompt.close();
  }
}
