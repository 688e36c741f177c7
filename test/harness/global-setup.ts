import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { buildAll } from "../../scripts/build";
import { randomSecret, redactUrl, redisHardeningArgs, startRedisServer, startS3Server } from "@slipway/shared/embedded";

export interface TestServices {
  redisUrl: string;
  s3Endpoint: string;
  s3AccessKey: string;
  s3SecretKey: string;
  /** How the services were started, for the test log. */
  via: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    services: TestServices;
  }
}

type Started = { services: TestServices; stop: () => Promise<void> };

/** Redis and MinIO in containers, when a Docker engine answers. */
async function startWithContainers(): Promise<Started | undefined> {
  const { GenericContainer, getContainerRuntimeClient, Wait } = await import("testcontainers");
  try {
    await getContainerRuntimeClient();
  } catch {
    return undefined; // "Could not find a working container runtime strategy": no Docker engine here.
  }
  const redisPassword = randomSecret();
  const redis = await new GenericContainer("redis:7-alpine")
    .withCommand(["redis-server", ...redisHardeningArgs(redisPassword)])
    .withExposedPorts(6379)
    .start();
  const minio = await new GenericContainer("minio/minio:latest")
    .withCommand(["server", "/data"])
    .withEnvironment({ MINIO_ROOT_USER: "slipway", MINIO_ROOT_PASSWORD: "slipway-secret" })
    .withExposedPorts(9000)
    .withWaitStrategy(Wait.forHttp("/minio/health/ready", 9000))
    .start();
  return {
    services: {
      redisUrl: `redis://:${redisPassword}@${redis.getHost()}:${redis.getMappedPort(6379)}`,
      s3Endpoint: `http://${minio.getHost()}:${minio.getMappedPort(9000)}`,
      s3AccessKey: "slipway",
      s3SecretKey: "slipway-secret",
      via: "testcontainers",
    },
    stop: async () => {
      await Promise.all([redis.stop(), minio.stop()]);
    },
  };
}

/** A real redis-server and a real S3-compatible server as local processes on free ports. */
async function startLocally(): Promise<Started> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "slipway-test-s3-"));
  const [redis, s3] = await Promise.all([startRedisServer(), startS3Server({ dir })]);
  return {
    services: { redisUrl: redis.url, s3Endpoint: s3.url, s3AccessKey: s3.accessKey, s3SecretKey: s3.secretKey, via: `redis-server + ${s3.kind}` },
    stop: async () => {
      await Promise.all([redis.stop(), s3.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject) {
  // `npm test` builds first too; this keeps a bare `vitest run` of one file from running a stale
  // or missing build: tests start the compiled services and CLI, as production does.
  await buildAll();
  const started = (await startWithContainers()) ?? (await startLocally());
  console.log(`test services (${started.services.via}): redis ${redactUrl(started.services.redisUrl)}, s3 ${started.services.s3Endpoint}`);
  project.provide("services", started.services);
  return started.stop;
}
