import { Option, type Command } from "commander";
import { resolveApp } from "./app-file";
import { ApiClient, ApiError } from "./client";
import { keepSecret } from "./output";

/** What every command needs from the program: the API client, the output mode and the app. */
export interface CliContext {
  client(): ApiClient;
  json(): boolean;
  /** `--app`, else the app file's app. */
  app(options: { app?: string }): Promise<string>;
}

export function cliContext(program: Command): CliContext {
  return {
    client: () => {
      const { url, token } = program.opts<{ url: string; token?: string }>();
      keepSecret(token);
      return new ApiClient({ url, ...(token ? { token } : {}) });
    },
    json: () => program.opts<{ json: boolean }>().json,
    app: (options) => resolveApp(options.app),
  };
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
