import { createReadStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import type { BuildResponse } from "@slipway/shared/light";
import { ApiError, CliError, type ApiClient } from "../client";
import { appPath } from "../context";
import { formatBytes } from "../output";
import { packSource, scanSource } from "../pack";
import { progressPrinter, uploadProgress } from "../progress";

export interface UploadSummary {
  bytes: number;
  files: number;
  sentFiles: number;
  matchedFiles: number;
  seconds: number;
}

/**
 * Packs `dir` and uploads it as a build of `app`, with progress on stderr. With `match`, only the
 * files the server does not already hold (by content) are sent.
 */
export async function uploadSource(client: ApiClient, app: string, dir: string, match: boolean): Promise<{ build: BuildResponse; upload: UploadSummary }> {
  const source = path.resolve(dir);
  if (!(await stat(source).then((s) => s.isDirectory(), () => false))) throw new CliError(`${dir} is not a directory`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), "slipway-deploy-"));
  try {
    const archive = path.join(tmp, "source.tar.gz");
    const err = process.stderr;
    let held: Parameters<typeof packSource>[2];
    if (match) {
      const entries = await scanSource(source);
      const { held: digests } = await client.json<{ held: string[] }>("POST", `${appPath(app)}/resources/match`, {
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
      const body = createReadStream(archive).pipe(uploadProgress(size, progressPrinter(err)));
      uploadStarted = Date.now();
      const response = await client.request("POST", `${appPath(app)}/builds${packed.matched > 0 ? "?resources=1" : ""}`, {
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
    const build = (await response.json()) as BuildResponse;
    return { build, upload: { bytes: size, files: packed.files, sentFiles: packed.sent, matchedFiles: packed.matched, seconds: (Date.now() - uploadStarted) / 1000 } };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
