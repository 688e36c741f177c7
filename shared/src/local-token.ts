import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * The API token `npm start` makes on its first start, kept in its data directory (`.slipway/`)
 * readable by its owner only, so the CLI on the same machine finds it. An API with no token lets
 * anything on the machine (an app's build included) deploy into and read every app.
 */
export const LOCAL_TOKEN_FILE = "api-token";

/** The token kept in `dataDir`, or undefined when there is none (or it is empty). */
export async function readLocalToken(dataDir: string): Promise<string | undefined> {
  const text = await readFile(path.join(dataDir, LOCAL_TOKEN_FILE), "utf8").catch(() => undefined);
  return text?.trim() || undefined;
}

/** The token kept in `dataDir`, made (and `created` true) when there is none yet. */
export async function ensureLocalToken(dataDir: string): Promise<{ token: string; file: string; created: boolean }> {
  const file = path.join(dataDir, LOCAL_TOKEN_FILE);
  const existing = await readLocalToken(dataDir);
  if (existing) return { token: existing, file, created: false };
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString("hex");
  // wx: two stacks starting at once on one data directory keep the first one's token.
  const created = await writeFile(file, `${token}\n`, { mode: 0o600, flag: "wx" }).then(() => true, (error: NodeJS.ErrnoException) => (error.code === "EEXIST" ? false : Promise.reject(error)));
  return created ? { token, file, created } : { token: (await readLocalToken(dataDir))!, file, created };
}

/** Whether the API at `host` is this machine's own loopback: where a local stack's token may be sent. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}
