import path from "node:path";
import { chooseServer, detectPythonApp, installedServers, pythonScriptCommand, readUntrustedText } from "@slipway/shared";
import { readAppText } from "./fs-checks";
import { BuildFailure } from "../errors";
import type { PlatformContext } from "./platform";

export interface PythonStartInputs {
  venvName: string;
  venvPython: string;
  /** The build's environment for pip (venv active). */
  env: Record<string, string>;
}

/**
 * The start command the manifest records for a Python app, and the server it needs: when the
 * detected app's server (gunicorn, uvicorn) is not in the venv, it is installed into it here,
 * inside the build's sandbox like every other build command. A Procfile `web:` line is the app's
 * own word on how to start: nothing is detected or installed then, and the runtime reads it.
 */
export async function preparePythonStart(ctx: PlatformContext, inputs: PythonStartInputs): Promise<string | undefined> {
  const procfile = (await readUntrustedText(path.join(ctx.sourceDir, "Procfile"))) ?? "";
  const web = /^web:\s*(\S.*)$/m.exec(procfile)?.[1];
  if (ctx.startupCommand) await installNamedServers(ctx, inputs, ctx.startupCommand, "the app's startupCommand");
  else if (web) await installNamedServers(ctx, inputs, web, "the Procfile's web: line");
  if (web) {
    ctx.log("Procfile has a web: line: the runtime starts the app with it (no start command detected)");
    return undefined;
  }
  const entry = await detectPythonApp(ctx.sourceDir, inputs.venvName);
  if (!entry) {
    const script = await pythonScriptCommand(ctx.sourceDir);
    ctx.log(script ? `No Django, Flask, FastAPI or Starlette app detected: the app starts with ${script}` : "No start command detected: add a Procfile web: line or set the app's startupCommand");
    return script;
  }
  ctx.log(`Detected a ${entry.framework} app (${entry.protocol.toUpperCase()}): ${entry.module}:${entry.variable} in ${entry.file}`);

  const dependencies = (await readAppText(ctx.sourceDir, "requirements.txt").catch(() => undefined)) === undefined ? "the app's dependencies" : "requirements.txt";
  const installed: string[] = [];
  for (;;) {
    const choice = chooseServer(entry, await installedServers(ctx.sourceDir, inputs.venvName));
    if ("command" in choice) {
      ctx.log(`Start command: ${choice.command}`);
      return choice.command;
    }
    // Each package is installed at most once: a second request means it did not provide what was needed.
    if (installed.includes(choice.install)) throw new BuildFailure(`${choice.install} was installed into ${inputs.venvName} but does not provide what serving the app needs`);
    installed.push(choice.install);
    ctx.log(`${choice.install} is not in ${dependencies}: installing it into ${inputs.venvName} to serve the app`);
    await ctx.run(inputs.venvPython, ["-m", "pip", "install", choice.install], { env: inputs.env, label: `pip install ${choice.install}` });
  }
}

/** The servers a command runs by name: `gunicorn app:app`, `cd src && uvicorn main:app`. */
const NAMED_SERVER = /(?:^|[\s;&|(])(gunicorn|uvicorn)(?=\s|$)/g;

/**
 * A start command of the app's own that runs gunicorn or uvicorn gets it even when the app's
 * dependencies lack it, as on App Service, whose Python images ship gunicorn: installed into the
 * venv here (before it is cached), saying so, instead of `gunicorn: not found` at start.
 */
async function installNamedServers(ctx: PlatformContext, inputs: PythonStartInputs, command: string, whose: string): Promise<void> {
  const named = new Set([...command.matchAll(NAMED_SERVER)].map((match) => match[1] as "gunicorn" | "uvicorn"));
  if (named.size === 0) return;
  const installed = await installedServers(ctx.sourceDir, inputs.venvName);
  for (const server of named) {
    if (installed[server]) continue;
    ctx.log(`${whose} runs ${server}, which the app's dependencies lack: installing it into ${inputs.venvName} (as App Service's images ship it)`);
    await ctx.run(inputs.venvPython, ["-m", "pip", "install", server], { env: inputs.env, label: `pip install ${server}` });
  }
}
