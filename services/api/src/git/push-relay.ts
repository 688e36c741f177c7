import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";

/** One `<old> <new> <ref>` line of what a push changed. */
export interface RefUpdate {
  oldSha: string;
  newSha: string;
  ref: string;
}

/** The pusher's terminal, through the hook: `say` writes one `remote:` line. */
export interface PushOutput {
  say(line: string): void;
  /** Whether the pusher went away (the hook, and so the socket, ended). */
  closed(): boolean;
}

/** What the API does with a push. */
export type PushHandler = (app: string, updates: RefUpdate[], output: PushOutput) => Promise<void>;

const MAX_REQUEST_BYTES = 256 * 1024;

/**
 * The relay a `post-receive` hook runs: it hands git's ref updates to the API over the relay
 * socket and copies what comes back to its stdout, which git shows the pusher as `remote:` lines.
 * Plain CommonJS run by the API's own node: a hook is a separate process that cannot share the
 * API's TypeScript loader.
 */
const RELAY_SOURCE = `"use strict";
const net = require("node:net");
const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const socket = net.connect(process.env.SLIPWAY_RELAY_SOCKET);
  socket.on("connect", () => socket.write(JSON.stringify({ token: process.env.SLIPWAY_PUSH_TOKEN, updates: Buffer.concat(chunks).toString() }) + "\\n"));
  socket.on("error", (error) => {
    process.stdout.write("slipway: the push was stored but could not be built: " + error.message + "\\n");
    process.exitCode = 1;
  });
  socket.pipe(process.stdout);
});
`;

const shellQuote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * Why a hook that calls back rather than one that builds: the build needs the API's connections
 * (storage, queue, Redis) and its code, which a hook process has neither of. The hook is a relay;
 * the API does the work and streams the build log back through it.
 *
 * Why a UNIX socket in a fresh 0700 directory rather than a route on the API's port: nothing off
 * this host, and no other uid on it (builds and apps run as their own), can reach it. Each push
 * request gets a one-time token, handed to the hook only through git's environment and bound to
 * that request's app, so no secret is ever written into a repository and a token cannot be
 * replayed for another app. The hooks directory is the API's own, given to git with
 * `core.hooksPath` per request: repositories hold no hooks, so nothing that can write into a
 * repository can change what runs on a push.
 */
export class PushRelay {
  private started?: Promise<{ dir: string; server: Server }>;
  private readonly pushes = new Map<string, string>();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly onPush: PushHandler) {}

  /** The `git -c` settings and environment that make a receive-pack run the relay for `app`; `release` forgets the token. */
  async prepare(app: string): Promise<{ config: Record<string, string>; env: Record<string, string>; release: () => void }> {
    const { dir } = await (this.started ??= this.start());
    const token = randomBytes(32).toString("hex");
    this.pushes.set(token, app);
    return {
      config: { "core.hooksPath": path.join(dir, "hooks") },
      env: { SLIPWAY_RELAY_SOCKET: path.join(dir, "relay.sock"), SLIPWAY_PUSH_TOKEN: token },
      release: () => this.pushes.delete(token),
    };
  }

  async close(): Promise<void> {
    if (!this.started) return;
    const { dir, server } = await this.started;
    // A hook following a build would hold the close up until the build ends.
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }

  private async start(): Promise<{ dir: string; server: Server }> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "slipway-git-"));
    await mkdir(path.join(dir, "hooks"));
    await writeFile(path.join(dir, "relay.cjs"), RELAY_SOURCE, { mode: 0o500 });
    const hook = path.join(dir, "hooks", "post-receive");
    await writeFile(hook, `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(path.join(dir, "relay.cjs"))}\n`);
    await chmod(hook, 0o500);
    const server = createServer((socket) => void this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path.join(dir, "relay.sock"), () => resolve());
    });
    return { dir, server };
  }

  private async serve(socket: Socket): Promise<void> {
    const say = (line: string) => {
      if (!socket.destroyed) socket.write(`${line}\n`);
    };
    socket.on("error", () => undefined);
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    try {
      const request = await readRequest(socket);
      const app = this.pushes.get(request.token);
      if (!app) return say("slipway: this push was not made through the API; nothing is built");
      this.pushes.delete(request.token);
      await this.onPush(app, parseUpdates(request.updates), { say, closed: () => socket.destroyed || !socket.writable });
    } catch (error) {
      say(`slipway: ${(error as Error).message}`);
    } finally {
      socket.end();
    }
  }
}

function readRequest(socket: Socket): Promise<{ token: string; updates: string }> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      const newline = text.indexOf("\n");
      if (text.length > MAX_REQUEST_BYTES && newline < 0) return reject(new Error("the hook's request is too large"));
      if (newline < 0) return;
      try {
        const parsed = JSON.parse(text.slice(0, newline)) as { token?: unknown; updates?: unknown };
        resolve({ token: String(parsed.token ?? ""), updates: String(parsed.updates ?? "") });
      } catch {
        reject(new Error("the hook's request is not JSON"));
      }
    });
    socket.on("end", () => reject(new Error("the hook sent no request")));
  });
}

export function parseUpdates(text: string): RefUpdate[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields.length === 3 && /^[0-9a-f]{40,64}$/.test(fields[0]!) && /^[0-9a-f]{40,64}$/.test(fields[1]!))
    .map(([oldSha, newSha, ref]) => ({ oldSha: oldSha!, newSha: newSha!, ref: ref! }));
}
