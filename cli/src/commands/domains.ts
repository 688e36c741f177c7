import { spawn } from "node:child_process";
import type { Command } from "commander";
import type { AppResponse } from "@slipway/shared/light";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";

interface Domains {
  app: string;
  url: string;
  domains: string[];
}

/** `domains` (an app's custom domains at the front door) and `open` (the app's URL in a browser). */
export function registerDomains(program: Command, cli: CliContext): void {
  const domains = program.command("domains").description("the app's custom domains at the front door (point their DNS records at it)");
  const show = (answer: Domains) => {
    if (cli.json()) return print(answer, true);
    process.stdout.write(`${answer.app}: ${answer.url}\n`);
    for (const domain of answer.domains) process.stdout.write(`  ${domain}\n`);
  };
  domains
    .command("list", { isDefault: true })
    .description("list the app's URL and custom domains (the default)")
    .addOption(appOption())
    .action(async (options: { app?: string }) => show(await cli.client().json<Domains>("GET", `${appPath(await cli.app(options))}/domains`)));
  domains
    .command("add <domain>")
    .description("route a domain to the app (refused when another app has it)")
    .addOption(appOption())
    .action(async (domain: string, options: { app?: string }) => show(await cli.client().json<Domains>("POST", `${appPath(await cli.app(options))}/domains`, { domain })));
  domains
    .command("remove <domain>")
    .description("stop routing a domain to the app")
    .addOption(appOption())
    .action(async (domain: string, options: { app?: string }) =>
      show(await cli.client().json<Domains>("DELETE", `${appPath(await cli.app(options))}/domains/${encodeURIComponent(domain)}`)),
    );

  program
    .command("open")
    .description("open the app's URL in a browser (prints it where there is none)")
    .addOption(appOption())
    .option("--print", "print the URL only")
    .action(async (options: { app?: string; print?: boolean }) => {
      const app = await cli.client().json<AppResponse>("GET", appPath(await cli.app(options)));
      const url = app.url ?? "";
      process.stdout.write(`${url}\n`);
      if (options.print || cli.json() || !process.stdout.isTTY) return;
      const opener = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
      // A machine without a browser still got the URL above.
      spawn(opener, [url], { stdio: "ignore", detached: true }).on("error", () => undefined).unref();
    });
}
