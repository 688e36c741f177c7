import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { CliError } from "./client";
import { registerAppLogs } from "./commands/app-logs";
import { registerApps } from "./commands/apps";
import { registerBuilds } from "./commands/builds";
import { registerCompletion } from "./commands/completion";
import { registerConfig } from "./commands/config";
import { deploy, type DeployOptions } from "./commands/deploy";
import { registerHosts } from "./commands/hosts";
import { registerDomains } from "./commands/domains";
import { registerReleases } from "./commands/releases";
import { appOption, cliContext } from "./context";
import { keepSecret, scrub } from "./output";
import { terminalSafe } from "./terminal";

keepSecret(process.env.SLIPWAY_TOKEN);

// Options read from the environment with .env(), not as defaults: help shows a default's value.
const VERSION = "0.1.0";
const program = new Command("slipway")
  .description("Deploy and watch apps on a Slipway server")
  .addOption(new Option("--url <url>", "the Slipway API").env("SLIPWAY_URL").default("http://127.0.0.1:8080"))
  .addOption(new Option("--token <token>", "API token").env("SLIPWAY_TOKEN"))
  .option("--json", "print the API's JSON for scripts instead of tables and text", false)
  .option("--raw", "print app and build output as it came, terminal control sequences and all (colours stay either way)", false)
  .configureOutput({ writeOut: (text) => process.stdout.write(scrub(text)), writeErr: (text) => process.stderr.write(scrub(text)) })
  .showHelpAfterError()
  .exitOverride();
const cli = cliContext(program);

program
  .command("deploy [dir]")
  .description("pack a directory (honouring .gitignore and .slipwayignore), upload it, follow the build and wait until the instances run its release")
  .addOption(appOption())
  .option("-d, --detach", "return once the build is queued", false)
  .option("-f, --follow", "follow the build and the rollout (the default; kept for scripts)")
  .option("--create", "create the app if it does not exist (otherwise that is an error)", false)
  .option("--timeout <seconds>", "how long to wait for the instances to run the new release", "300")
  .option("--no-match", "upload every file, even those the server already holds")
  .action(async (dir: string | undefined, options: DeployOptions) => {
    await deploy(cli, dir ?? ".", options);
  });

registerApps(program, cli);
registerBuilds(program, cli);
registerReleases(program, cli);
registerHosts(program, cli);
registerDomains(program, cli);
registerConfig(program, cli);
registerAppLogs(program, cli);

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

registerCompletion(program);

// Commander would take --version for the program's wherever it came, `rollback --version 3` too:
// only a first argument asks for the CLI's version.
const VERSION_FLAGS = ["-V", "--version"];
program.addHelpText("after", `\n${VERSION_FLAGS.join(", ")} as the first argument prints the version.`);

try {
  if (VERSION_FLAGS.includes(process.argv[2] ?? "")) process.stdout.write(`${VERSION}\n`);
  else await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit 0; usage errors were already printed by commander.
    process.exitCode = error.exitCode;
  } else {
    // One line, whatever the message held: scripts read the last line of stderr.
    // An error may quote an app's output (a build's reason, an instance's): no control sequences in it.
    process.stderr.write(scrub(`slipway: ${terminalSafe((error as Error).message.replace(/\s*\n\s*/g, " "))}\n`));
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  }
}
