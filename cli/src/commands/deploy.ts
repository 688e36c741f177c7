import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import type { BuildResponse as BuildView, InstanceResponse } from "@slipway/shared/light";
import { ApiClient, ApiError, CliError } from "../client";
import { formatBytes, print } from "../output";
import { packSource, scanSource } from "../pack";
import { followLog } from "./logs";


/** A pass-through that reports bytes sent and the rate, at most a few times a second. */
function progress(total: number, report: (line: string, done: boolean) => void): Transform {
  let sent = 0;
  const started = Date.now();
  let last = 0;
  const line = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const percent = total ? Math.floor((sent / total) * 100) : 100;
    return `uploading ${formatBytes(sent)} / ${formatBytes(total)} (${percent}%) at ${formatBytes(sent / seconds)}/s`;
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      if (Date.now() - last > 200) {
        last = Date.now();
        report(line(), false);
      }
      callback(null, chunk);
    },
    flush(callback) {
      report(line(), true);
      callback();
    },
  });
}

export async function deploy(client: ApiClient, dir: string, options: { app: string; follow: boolean; json: boolean; match: boolean }): Promise<number> {
  const source = path.resolve(dir);
  if (!(await stat(source).then((s) => s.isDirectory(), () => false))) throw new CliError(`${dir} is not a directory`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), "slipway-deploy-"));
  try {
    const archive = path.join(tmp, "source.tar.gz");
    const err = process.stderr;
    // Ask which files the server already holds (by content), and send only the rest.
    let held: Parameters<typeof packSource>[2];
    if (options.match) {
      const entries = await scanSource(source);
      const { held: digests } = await client.json<{ held: string[] }>("POST", `/v1/apps/${encodeURIComponent(options.app)}/resources/match`, {
        resources: [...new Set(entries.map((e) => e.sha256))],
      });
      held = { entries, digests: new Set(digests) };
    }
    let uploadStarted = 0;
    const send = async (matched: typeof held) => {
      const packed = await packSource(source, archive, matched);
      const { size } = await stat(archive);
      err.write(
        packed.matched > 0
          ? `packed ${packed.sent} of ${packed.files} files from ${source} (${formatBytes(size)}); ${packed.matched} unchanged files are already on the server\n`
          : `packed ${packed.files} files from ${source} (${formatBytes(size)})\n`,
      );
      const body = createReadStream(archive).pipe(
        progress(size, (line, done) => err.write(err.isTTY ? `\r${line}${done ? "\n" : ""}` : `${line}\n`)),
      );
      uploadStarted = Date.now();
      const response = await client.request("POST", `/v1/apps/${encodeURIComponent(options.app)}/builds${packed.matched > 0 ? "?resources=1" : ""}`, {
        body: Readable.toWeb(body) as unknown as RequestInit["body"],
        contentType: "application/gzip",
        duplex: true,
      });
      return { packed, size, response };
    };
    let sent;
    try {
      sent = await send(held);
    } catch (error) {
      // Files the server matched can be gone or fail its integrity check by the time it assembles
      // the source; it then drops them, and sending everything succeeds.
      if (!(held && error instanceof ApiError && error.code === "resource_missing")) throw error;
      err.write(`the server could not use some files it held (${error.message}); sending all files\n`);
      sent = await send(undefined);
    }
    const { packed, size, response } = sent;
    const build = (await response.json()) as BuildView;
    const upload = { bytes: size, files: packed.files, sentFiles: packed.sent, matchedFiles: packed.matched, seconds: (Date.now() - uploadStarted) / 1000 };
    err.write(`build ${build.id} queued\n`);
    if (!options.follow) {
      if (options.json) print({ build, upload }, true);
      return 0;
    }
    await followLog(client, build.id, (line) => process.stdout.write(options.json ? "" : `${line}\n`));
    const final = await client.json<BuildView>("GET", `/v1/builds/${build.id}`);
    const instances = final.status === "succeeded" ? await waitForInstances(client, options.app, final.release) : [];
    if (options.json) {
      print({ build: final, instances, upload }, true);
    } else if (final.status === "succeeded") {
      process.stdout.write(`build succeeded: ${final.release ? `release v${final.release}` : "not deployed"}\n`);
      for (const instance of instances) process.stdout.write(`  ${instance.instanceId}: ${instance.state} v${instance.release ?? "-"}\n`);
    }
    if (final.status !== "succeeded") throw new CliError(`build ${final.id} ${final.status}: ${final.error ?? "see its log"}`);
    return 0;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Gives the instances a few seconds to pick the release up, then shows where they are. */
async function waitForInstances(client: ApiClient, app: string, release: number | undefined): Promise<InstanceResponse[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const instances = await client.json<InstanceResponse[]>("GET", `/v1/apps/${encodeURIComponent(app)}/instances`);
    const settled = instances.every((i) => (i.release === release && i.state === "running") || i.state === "failed" || i.state === "unknown");
    if (release === undefined || settled || Date.now() > deadline) return instances;
    await new Promise((r) => setTimeout(r, 500));
  }
}
