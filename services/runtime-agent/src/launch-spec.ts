import path from "node:path";
import type { AppRecord } from "@slipway/shared";
import { sandboxEnvironment } from "@slipway/shared/sandbox";
import type { AppSandbox } from "./app-sandbox";
import { withShippedNodeTools } from "./node-path";
import { serverWorkersEnvironment } from "./python-env";
import { RestoreError, type RestoredRelease } from "./restore";
import { NO_START_COMMAND, resolveStartCommand } from "./start-command";
import type { LaunchSpec } from "./supervisor";

/** How to start a restored release: its command, and its environment without PORT (each launch picks one). */
export async function launchSpec(restored: RestoredRelease, sandbox: AppSandbox, app: Pick<AppRecord, "startupCommand" | "env" | "healthCheck"> | undefined): Promise<LaunchSpec> {
  // Over an overlay the release directory holds only this instance's changes: the shipped files are read where they lie.
  const command = await resolveStartCommand(restored.lower ?? restored.appPath, restored.manifest, app?.startupCommand);
  if (!command) throw new RestoreError(NO_START_COMMAND);
  const paths = { sandboxPath: sandbox.path, appPath: restored.appPath, dataPath: sandbox.dataPath };
  const env = withShippedNodeTools(appEnvironment(paths, restored.manifest.virtualEnvName, app?.env ?? {}), restored.appPath, restored.manifest);
  return { appPath: restored.appPath, command, env, ...(restored.lower ? { lower: restored.lower } : {}), ...(app?.healthCheck ? { healthCheck: app.healthCheck } : {}) };
}

function appEnvironment(paths: { sandboxPath: string; appPath: string; dataPath: string }, venvName: string | undefined, appEnv: Record<string, string>): Record<string, string> {
  const { sandboxPath, appPath } = paths;
  const env: Record<string, string> = {
    // The release directory is all the app may write; its home is there too, as Heroku's /app.
    ...sandboxEnvironment({ path: sandboxPath, home: appPath }),
    PYTHONUNBUFFERED: "1",
    ...appEnv,
    ...serverWorkersEnvironment(appEnv),
    APP_PATH: appPath,
    APP_DATA_PATH: paths.dataPath,
  };
  if (venvName) {
    env.VIRTUAL_ENV = path.join(appPath, venvName);
    env.PATH = `${path.join(env.VIRTUAL_ENV, "bin")}:${env.PATH}`;
  }
  return env;
}
