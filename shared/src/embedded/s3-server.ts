import { spawn, spawnSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import S3rver from "s3rver";
import { freePort, waitForPort } from "./free-port";
import { stopChild, type EmbeddedServer } from "./redis-server";

export interface EmbeddedS3 extends EmbeddedServer {
  accessKey: string;
  secretKey: string;
  /** "minio" when a MinIO binary serves it, "s3rver" for the in-process fallback. */
  kind: "minio" | "s3rver";
}

/** A MinIO binary from `MINIO_BIN` or the PATH, if there is one. */
export function findMinioBinary(): string | undefined {
  if (process.env.MINIO_BIN) return process.env.MINIO_BIN;
  const which = spawnSync("sh", ["-c", "command -v minio"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() || undefined : undefined;
}

/**
 * Starts a real S3-compatible server on a free loopback port with its data under `dir`: MinIO when
 * a binary is available, otherwise s3rver inside this process.
 */
export async function startS3Server(options: { dir: string; port?: number }): Promise<EmbeddedS3> {
  await mkdir(options.dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const minio = findMinioBinary();
  if (minio) {
    const accessKey = "slipway";
    const secretKey = "slipway-secret";
    const consolePort = await freePort();
    const child = spawn(minio, ["server", options.dir, "--quiet", "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: "off" },
    });
    const exited = new Promise<never>((_, reject) => {
      child.on("error", reject);
      child.on("exit", (code) => reject(new Error(`minio exited with code ${code}`)));
    });
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port, 30_000), exited]);
    await Promise.race([waitForHealthy(`http://127.0.0.1:${port}/minio/health/ready`, 30_000), exited]);
    return { url: `http://127.0.0.1:${port}`, accessKey, secretKey, kind: "minio", stop: () => stopChild(child) };
  }
  const server = new S3rver({ port, address: "127.0.0.1", silent: true, directory: options.dir });
  await server.run();
  return {
    url: `http://127.0.0.1:${port}`,
    // s3rver's fixed credentials.
    accessKey: "S3RVER",
    secretKey: "S3RVER",
    kind: "s3rver",
    stop: () => server.close(),
  };
}

async function waitForHealthy(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not become healthy within ${timeoutMs} ms`);
}
