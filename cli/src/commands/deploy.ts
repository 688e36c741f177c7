import type { AppResponse, BuildResponse, InstanceResponse } from "@slipway/shared/light";
import { CliError } from "../client";
import { appExists, appPath, type CliContext } from "../context";
import { print } from "../output";
import { followLog } from "./logs";
import { waitForRelease } from "./release-wait";
import { uploadSource } from "./upload";

export interface DeployOptions {
  app?: string;
  detach: boolean;
  create: boolean;
  match: boolean;
  /** Seconds to wait for the instances to run the new release. */
  timeout: string;
}

/**
 * Uploads and builds `dir`; unless detached, follows the build and waits until the instances run
 * its release. Answers nothing: every failure is a CliError, so the exit code says it all.
 */
export async function deploy(cli: CliContext, dir: string, options: DeployOptions): Promise<void> {
  const client = cli.client();
  const app = await cli.app(options);
  const json = cli.json();
  const timeoutS = Number(options.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS < 0) throw new CliError(`--timeout wants seconds, not "${options.timeout}"`);
  // An upload would create the app: a typo must not quietly make a new one.
  if (!(await appExists(client, app))) {
    if (!options.create) throw new CliError(`app ${app} does not exist: check the name, or pass --create to create it`);
    await client.json("PUT", appPath(app), {});
    process.stderr.write(`created app ${app}\n`);
  }
  const { build, upload } = await uploadSource(client, app, dir, options.match);
  process.stderr.write(`build ${build.id} queued\n`);
  if (options.detach) {
    if (json) print({ build, upload }, true);
    return;
  }

  await followLog(client, build.id, (line) => (json ? undefined : process.stdout.write(cli.output(`${line}\n`))));
  const final = await client.json<BuildResponse>("GET", `/v1/builds/${encodeURIComponent(build.id)}`);
  if (final.status !== "succeeded") {
    if (json) print({ build: final, instances: [], upload }, true);
    throw new CliError(`build ${final.id} ${final.status}: ${final.error ?? "see its log"}`);
  }
  if (final.release === undefined) {
    if (json) print({ build: final, instances: [], upload }, true);
    else process.stdout.write("build succeeded: not deployed\n");
    return;
  }
  if (!json) process.stdout.write(`build succeeded: release v${final.release}; waiting for the instances to run it\n`);
  const result = await waitForRelease(client, app, final.release, timeoutS * 1000);
  if (json) print({ build: final, release: final.release, outcome: result.outcome, instances: result.instances, upload }, true);
  else showInstances(result.instances, final.release);
  if (result.outcome === "failed") throw new CliError(`release v${final.release} of ${app} failed ${result.reason}`);
  if (result.outcome === "timeout") throw new CliError(`release v${final.release} of ${app}: not every instance ran it within ${timeoutS}s`);
  if (json) return;
  if (!result.instances.some((i) => i.state === "running")) return void process.stdout.write(`release v${final.release}: no instance reports for ${app} yet\n`);
  const url = (await client.json<AppResponse>("GET", appPath(app)).catch(() => undefined))?.url;
  process.stdout.write(`release v${final.release} is running${url ? ` at ${url}` : ""}\n`);
}

function showInstances(instances: InstanceResponse[], release: number): void {
  for (const instance of instances) {
    const error = instance.error && instance.release === release ? `: ${instance.error.split("\n")[0]}` : "";
    process.stdout.write(`  ${instance.instanceId}: ${instance.state} v${instance.release ?? "-"}${error}\n`);
  }
}
