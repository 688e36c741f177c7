import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { ChunkVerificationError, CorruptArchiveError, ObjectNotFoundError, STORE_UNAVAILABLE, type Compression } from "@slipway/shared";
import { AgentStopping, throwIfStopping } from "./timeout";

/**
 * The chunk-verifying downloader built from `services/runtime-agent/fetch` (Go) beside the
 * compiled agent (`FETCH_HELPER`): it does what `extractChunkVerified` does, at the pace of
 * `curl | tar` (see its source for why).
 */
export const FETCH_HELPER_NAME = "slipway-fetch";

export interface HelperFetch {
  /** Where the helper downloads from: a presigned URL, since it holds no storage credentials. */
  url: string;
  /** The storage key, for messages (the URL is a credential while it lasts and is never shown). */
  key: string;
  destDir: string;
  compression: Compression;
  chunkBytes: number;
  chunkSha256s: string[];
  /** The download fails once no byte arrived for this long (S3_IDLE_TIMEOUT_S). */
  idleTimeoutMs: number;
}

const EXIT_VERIFY = 3;
const EXIT_NOT_FOUND = 5;
const EXIT_TAR = 6;
const EXIT_BUSY = 7;

/** Exit statuses of slipway-fetch as the errors the node path throws for the same cause. */
function errorFor(code: number | null, message: string, key: string): Error {
  if (code === EXIT_VERIFY) return new ChunkVerificationError(message);
  if (code === EXIT_NOT_FOUND) return new ObjectNotFoundError(key);
  if (code === EXIT_TAR) return new CorruptArchiveError(message);
  const failed = new Error(`${FETCH_HELPER_NAME} could not fetch ${key}: ${message || `exit ${code}`}`);
  // Before any byte reached tar, as a store that cannot be reached when a download opens.
  return code === EXIT_BUSY ? Object.assign(failed, { code: STORE_UNAVAILABLE }) : failed;
}

/**
 * Runs the helper once and settles when it has exited: resolves once the whole object was
 * checked and extracted into `destDir`; otherwise the caller discards `destDir`. `signal`
 * aborting kills it (and with it its tar) and rejects with AgentStopping.
 */
export async function fetchWithHelper(helper: string, request: HelperFetch, signal?: AbortSignal): Promise<void> {
  throwIfStopping(signal);
  await mkdir(request.destDir, { recursive: true });
  // The agent's environment holds its storage and Redis credentials: the helper and its tar need
  // none of them, only where to find programs and, for an https store, which CAs to trust.
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" };
  for (const name of ["SSL_CERT_FILE", "SSL_CERT_DIR"]) if (process.env[name]) env[name] = process.env[name];
  const child = spawn(helper, ["--compression", request.compression, "--dir", request.destDir], { stdio: ["pipe", "ignore", "pipe"], env });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    if (stderr.length < 65536) stderr += chunk.toString();
  });
  const kill = () => child.kill("SIGKILL");
  signal?.addEventListener("abort", kill, { once: true });
  try {
    const exited = new Promise<number | null>((resolve, reject) => {
      // A FETCH_HELPER that is not there, or not executable, says so.
      child.once("error", (error) => reject(new Error(`${FETCH_HELPER_NAME} (${helper}) could not start: ${error.message}`)));
      child.once("close", (code) => resolve(code));
    });
    // It reads the whole request before anything else; a helper gone already says why in its exit.
    child.stdin.on("error", () => undefined);
    child.stdin.end(JSON.stringify({ url: request.url, chunkBytes: request.chunkBytes, chunkSha256s: request.chunkSha256s, idleTimeoutMs: request.idleTimeoutMs }));
    const code = await exited;
    if (signal?.aborted) throw new AgentStopping();
    if (code === 0) return;
    const line = stderr.trim().split("\n").at(-1) ?? "";
    throw errorFor(code, line.replace(/^slipway-fetch: /, ""), request.key);
  } finally {
    signal?.removeEventListener("abort", kill);
  }
}
