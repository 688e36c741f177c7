import type { Command } from "commander";
import { CliError } from "../client";
import { appOption, appPath, type CliContext } from "../context";
import { print } from "../output";

interface Scale {
  app: string;
  instances: number;
  placed: number;
  message?: string;
}

/** `scale` (how many instances an app runs) and `hosts` (where instances run; drain and undrain). */
export function registerHosts(program: Command, cli: CliContext): void {
  program
    .command("scale [instances]")
    .description("run this many instances of the app (0 stops it); without a number, show how many it asks for and how many are placed")
    .addOption(appOption())
    .action(async (count: string | undefined, options: { app?: string }) => {
      const app = await cli.app(options);
      const api = cli.client();
      let scale: Scale;
      if (count === undefined) {
        scale = await api.json<Scale>("GET", `${appPath(app)}/scale`);
      } else {
        const instances = Number(count);
        if (!/^\d+$/.test(count) || !Number.isSafeInteger(instances)) throw new CliError(`"${count}" is not a number of instances`);
        scale = await api.json<Scale>("PUT", `${appPath(app)}/scale`, { instances });
      }
      if (cli.json()) return print(scale, true);
      process.stdout.write(`${app}: ${scale.instances} instance(s) asked for, ${scale.placed} placed\n`);
      if (scale.message) process.stdout.write(`${scale.message}\n`);
    });

  const hosts = program.command("hosts").description("the hosts instances run on: state, capacity, instances, last heartbeat");
  hosts.action(async () => {
    print(await cli.client().json("GET", "/v1/hosts"), cli.json(), [
      ["HOST", (h) => h.id],
      ["STATE", (h) => h.state],
      ["ADDRESS", (h) => h.address],
      ["INSTANCES", (h) => `${(h.instances as unknown[]).length}/${String(h.capacity)}`],
      ["HEARTBEAT", (h) => h.lastHeartbeatAt ?? ""],
    ]);
  });
  for (const [action, description] of [
    ["drain", "move every instance off the host (each serves elsewhere before it stops here); the host takes no more until undrain"],
    ["undrain", "let a drained host take instances again"],
  ] as const) {
    hosts
      .command(`${action} <host>`)
      .description(description)
      .action(async (host: string) => {
        const answer = await cli.client().json<{ id: string; state: string; message: string }>("POST", `/v1/hosts/${encodeURIComponent(host)}/${action}`);
        if (cli.json()) return print(answer, true);
        process.stdout.write(`${answer.id}: ${answer.state}; ${answer.message}\n`);
      });
  }
}
