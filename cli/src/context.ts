import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Option, type Command } from "commander";
import { isLoopbackHost, LOCAL_TOKEN_FILE } from "@slipway/shared/light";
import { resolveApp } from "./app-file";
import { ApiClient, ApiError } from "./client";
import { keepSecret } from "./output";
import { terminalSafe } from "./terminal";

/** What every command needs from the program: the API client, the output mode and the app. */
export interface CliContext {
  client(): ApiClient;
  json(): boolean;
  /** How app and build output is printed: as it came with `--raw`, else without terminal control sequences. */
  output(text: string): string;
  /** `--app`, else the app file's app. */
  app(options: { app?: string }): Promise<string>;
}

export function cliContext(program: Command): CliContext {
  return {
    client: () => {
      const { url, token: given } = program.opts<{ url: string; token?: string }>();
      const token = given ?? localStackToken(url);
      keepSecret(token);
      return new ApiClient({ url, ...(token ? { token } : {}) });
    },
    json: () => program.opts<{ json: boolean }>().json,
    output: (text) => (program.opts<{ raw: boolean }>().raw ? text : terminalSafe(text)),
    app: (options) => resolveApp(options.app),
  };
}

/**
 * The token `npm start` made for the stack it runs on this machine (`.slipway/api-token` of this
 * checkout, or SLIPWAY_DATA_DIR's), for an API on loopback: never sent anywhere else.
 */
function localStackToken(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return undefined;
  }
  if (!isLoopbackHost(host)) return undefined;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const dataDir = path.resolve(process.env.SLIPWAY_DATA_DIR ?? path.join(root, ".slipway"));
  try {
    return readFileSync(path.join(dataDir, LOCAL_TOKEN_FILE), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The `--app` option of every command that acts on one app. */
export const appOption = () => new Option("-a, --app <name>", "the app (default: the one named in slipway.toml)");

export const appPath = (app: string) => `/v1/apps/${encodeURIComponent(app)}`;

/** Whether the API's answer was "no such app" (as opposed to a missing route or build). */
export async function appExists(client: ApiClient, app: string): Promise<boolean> {
  try {
    await client.json("GET", appPath(app));
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return false;
    throw error;
  }
}
