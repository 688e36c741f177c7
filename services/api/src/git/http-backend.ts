import type { Request, Response } from "express";
import type { Logger } from "@slipway/shared";
import { spawnGit } from "./git-command";

export interface BackendRequest {
  /** GIT_PROJECT_ROOT: the directory holding the repositories. */
  projectRoot: string;
  /** The path below the root: `/<app>.git/info/refs`. */
  pathInfo: string;
  remoteUser: string;
  /** `git -c` settings for this request (the push hooks, receive limits). */
  config: Record<string, string>;
  /** Passed through to the hooks the request runs. */
  env?: Record<string, string>;
}

const HEADER_END = /\r?\n\r?\n/;

/**
 * Serves one smart-HTTP request with git's own `git http-backend` as a CGI program: the request
 * body goes to its stdin; its stdout is CGI headers (with `Status:`), then the answer, streamed.
 * git does the protocol, so clones and pushes behave exactly as against any git server.
 */
export async function runHttpBackend(req: Request, res: Response, logger: Logger, request: BackendRequest): Promise<void> {
  const configArgs = Object.entries(request.config).flatMap(([key, value]) => ["-c", `${key}=${value}`]);
  const header = (name: string) => req.headers[name.toLowerCase()] as string | undefined;
  const cgi: Record<string, string> = {
    GIT_PROJECT_ROOT: request.projectRoot,
    GIT_HTTP_EXPORT_ALL: "1",
    PATH_INFO: request.pathInfo,
    REQUEST_METHOD: req.method,
    QUERY_STRING: new URL(req.originalUrl, "http://host").search.slice(1),
    REMOTE_USER: request.remoteUser,
    REMOTE_ADDR: req.socket.remoteAddress ?? "",
    ...(header("content-type") && { CONTENT_TYPE: header("content-type")! }),
    ...(header("content-length") && { CONTENT_LENGTH: header("content-length")! }),
    // git clients gzip large requests; http-backend inflates them itself.
    ...(header("content-encoding") && { HTTP_CONTENT_ENCODING: header("content-encoding")! }),
    ...(header("git-protocol") && { GIT_PROTOCOL: header("git-protocol")! }),
    ...request.env,
  };
  const child = spawnGit(request.projectRoot, [...configArgs, "http-backend"], cgi);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  // A client that hangs up leaves git to finish (or fail) on its own: killing it mid-push could
  // leave a ref's lock file behind.
  child.stdin.on("error", () => undefined);
  req.pipe(child.stdin);

  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  await forwardCgiResponse(child.stdout, res);
  const code = await exited;
  if (code !== 0) logger.warn({ code, stderr: stderr.trim(), path: request.pathInfo }, "git http-backend failed");
  if (!res.headersSent) throw new Error(`git http-backend answered no headers (exit ${code}): ${stderr.trim()}`);
  if (!res.writableEnded) res.end();
}

/** Reads the CGI headers, answers with them, then pipes the rest of `stdout` to the client. */
function forwardCgiResponse(stdout: NodeJS.ReadableStream, res: Response): Promise<void> {
  return new Promise((resolve) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const text = head.toString("latin1");
      const end = HEADER_END.exec(text);
      if (!end) return;
      stdout.off("data", onData);
      stdout.pause();
      writeCgiHeaders(res, text.slice(0, end.index));
      res.write(head.subarray(end.index + end[0].length));
      stdout.pipe(res, { end: false });
      stdout.once("end", () => resolve());
    };
    stdout.on("data", onData);
    stdout.once("end", () => resolve());
  });
}

function writeCgiHeaders(res: Response, block: string): void {
  let status = 200;
  for (const line of block.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number.parseInt(value, 10) || 500;
    else res.setHeader(name, value);
  }
  res.status(status);
}
