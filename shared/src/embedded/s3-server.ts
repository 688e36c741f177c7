import { spawn, spawnSync } from "node:child_process";
import { mkdir } from "node:fs/promises";
import S3rver from "s3rver";
import { freePort, waitForPort } from "./free-port";
import { randomSecret, stopChild, type EmbeddedServer } from "./redis-server";
import { checkSigV4, s3ErrorXml, type S3Credentials } from "./sigv4";

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

export interface S3ServerOptions {
  dir: string;
  port?: number;
  /** The secret clients sign with; give a restart on the same `dir` the one its clients hold. */
  secretKey?: string;
  /** Which server; by default MinIO when a binary is available, otherwise s3rver. */
  engine?: "minio" | "s3rver";
}

/**
 * Starts a real S3-compatible server on a free loopback port with its data under `dir`: MinIO when
 * a binary is available, otherwise s3rver inside this process. Both refuse requests not signed
 * with the secret key they answer with.
 */
export async function startS3Server(options: S3ServerOptions): Promise<EmbeddedS3> {
  await mkdir(options.dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const minio = options.engine === "s3rver" ? undefined : findMinioBinary();
  if (options.engine === "minio" && !minio) throw new Error("no MinIO binary: set MINIO_BIN or put minio on the PATH");
  if (minio) {
    const accessKey = "slipway";
    const secretKey = options.secretKey ?? "slipway-secret";
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
  // s3rver knows one access key id, S3RVER, and never checks Version 4 signatures itself: a layer in
  // front of its routes checks them against a secret of this start's own.
  const credentials: S3Credentials = { accessKey: "S3RVER", secretKey: options.secretKey ?? randomSecret() };
  const server = new S3rver({ port, address: "127.0.0.1", silent: true, directory: options.dir });
  server.middleware.unshift(async (ctx, next) => {
    const check = checkSigV4(ctx.req, credentials);
    if (!check.ok) {
      ctx.status = 403;
      ctx.type = "application/xml";
      ctx.body = s3ErrorXml(check.code, check.message);
      return;
    }
    await next();
  });
  await server.run();
  return {
    url: `http://127.0.0.1:${port}`,
    ...credentials,
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
