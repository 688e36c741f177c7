import type { Command } from "commander";
import { formatAppLogLine, type AppLogEntry } from "@slipway/shared/light";
import { ApiError, type ApiClient } from "../client";
import { appOption, type CliContext } from "../context";
import { serverSentEvents } from "../sse";

export interface AppLogOptions {
  tail: boolean;
  instance?: string;
  since?: string;
  limit?: string;
  json: boolean;
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** `--since`: an ISO time or log line id as the API takes them, or a duration back from now (`90s`, `15m`, `2h`, `1d`). */
export function sinceParameter(since: string, now = Date.now()): string {
  const relative = /^(\d+)([smhd])$/.exec(since);
  return relative ? new Date(now - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]).toISOString() : since;
}

function logsPath(app: string, options: AppLogOptions): string {
  const query = new URLSearchParams();
  if (options.instance) query.set("instance", options.instance);
  if (options.since) query.set("since", sinceParameter(options.since));
  if (options.limit) query.set("limit", options.limit);
  const search = query.toString();
  return `/v1/apps/${encodeURIComponent(app)}/logs${search ? `?${search}` : ""}`;
}

/** Prints an app's log; with `tail`, keeps following it (reconnecting where it left off) until interrupted. */
export async function showAppLogs(client: ApiClient, app: string, options: AppLogOptions, write: (text: string) => void): Promise<void> {
  const path = logsPath(app, options);
  const print = (entry: AppLogEntry) => write(`${options.json ? JSON.stringify(entry) : formatAppLogLine(entry)}\n`);
  if (!options.tail) {
    const entries = (await (await client.request("GET", path, { accept: "application/json" })).json()) as AppLogEntry[];
    if (options.json) write(`${JSON.stringify(entries, null, 2)}\n`);
    else for (const entry of entries) print(entry);
    return;
  }
  let lastId: string | undefined;
  for (let failures = 0; ; ) {
    try {
      const response = await client.request("GET", path, { accept: "text/event-stream", ...(lastId ? { lastEventId: lastId } : {}) });
      for await (const event of serverSentEvents(response)) {
        failures = 0;
        print(JSON.parse(event.data) as AppLogEntry);
        lastId = event.id ?? lastId;
      }
    } catch (error) {
      // The API's refusal is final; a dropped connection is followed again from the last line seen.
      if (error instanceof ApiError || failures >= 5) throw error;
    }
    failures += 1;
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * failures)));
  }
}

/** `logs`: the app's own output from every instance, fetched or followed live. */
export function registerAppLogs(program: Command, cli: CliContext): void {
  program
    .command("logs")
    .description("the app's output from its instances; --tail follows it live (build logs: slipway builds logs ID)")
    .addOption(appOption())
    .option("-t, --tail", "follow new lines as they come, until interrupted", false)
    .option("-i, --instance <id>", "only this instance's lines")
    .option("--since <time>", "only lines from this time on: an ISO time, a line id, or a duration back from now (90s, 15m, 2h, 1d)")
    .option("-n, --limit <n>", "at most this many lines")
    .action(async (options: { app?: string; tail: boolean; instance?: string; since?: string; limit?: string }) => {
      const app = await cli.app(options);
      await showAppLogs(cli.client(), app, { ...options, json: cli.json() }, (text) => process.stdout.write(cli.output(text)));
    });
}
