import type { AppRecord } from "./contracts/index";

/** The app settings a running process was started with: changing one needs a new process. */
export type LaunchConfig = Pick<AppRecord, "env" | "startupCommand" | "healthCheck">;

/**
 * A canonical text of the launch settings (keys sorted), so the API can tell whether a change
 * needs a `config` release and an agent whether the process it serves was started with them.
 */
export function launchConfigKey(app: Partial<LaunchConfig> | undefined): string {
  const env = Object.entries(app?.env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const health = app?.healthCheck;
  return JSON.stringify([env, app?.startupCommand ?? null, health ? [health.path, health.timeoutS, health.expectText ?? null] : null]);
}
