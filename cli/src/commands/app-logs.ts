import type { Command } from "commander";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";
import { readEvents } from "./logs";

interface LogLine {
  time: string;
  instanceId: string;
  stream: string;
  line: string;
}

/** The text form the API uses for text/plain, so a followed log reads like a fetched one. */
function formatLine(data: string): string {
  try {
    const entry = JSON.parse(data) as LogLine;
    if (entry && typeof entry === "object" && typeof entry.line === "string") return `${entry.time} ${entry.instanceId} ${entry.stream}: ${entry.line}`;
  } catch {
    // already a text line
  }
  return data;
}

/** `logs`: the app's own output from every instance, fetched or followed live. */
export function registerAppLogs(program: Command, cli: CliContext): void {
  program
    .command("logs")
    .description("the app's output from its instances; --tail follows it live (build logs: slipway builds logs ID)")
    .addOption(appOption())
    .option("-t, --tail", "follow new lines as they come, until interrupted", false)
    .option("-i, --instance <id>", "only this instance's lines")
    .option("--since <time>", "only lines from this time on (as the API takes it, e.g. an ISO time)")
    .option("-n, --limit <n>", "at most this many lines")
    .action(async (options: { app?: string; tail: boolean; instance?: string; since?: string; limit?: string }) => {
      const app = await cli.app(options);
      const query = new URLSearchParams();
      if (options.instance) query.set("instance", options.instance);
      if (options.since) query.set("since", options.since);
      if (options.limit) query.set("limit", options.limit);
      const url = `${appPath(app)}/logs${query.size ? `?${query}` : ""}`;
      const client = cli.client();
      const json = cli.json();
      if (options.tail) {
        const response = await client.request("GET", url, { accept: "text/event-stream" });
        // --json prints each entry as the API sent it, one JSON document a line.
        await readEvents(response, ({ data }) => process.stdout.write(`${json ? data : formatLine(data)}\n`));
        return;
      }
      if (json) return print(await (await client.request("GET", url, { accept: "application/json" })).json(), true);
      process.stdout.write(await (await client.request("GET", url, { accept: "text/plain" })).text());
    });
}
