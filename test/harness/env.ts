import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { connectRedis, ObjectStore, type StorageConfig } from "@slipway/shared";

/**
 * Environment for a service under test: the harness's Redis and S3 server, and a bucket of the
 * test's own so tests running side by side never see each other's objects.
 */
export function serviceEnv(bucket = `test-${randomUUID().slice(0, 8)}`): Record<string, string> {
  const services = inject("services");
  return {
    REDIS_URL: services.redisUrl,
    S3_ENDPOINT: services.s3Endpoint,
    S3_ACCESS_KEY: services.s3AccessKey,
    S3_SECRET_KEY: services.s3SecretKey,
    S3_BUCKET: bucket,
    S3_REGION: "us-east-1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "error",
  };
}

export function storageFor(env: Record<string, string>): ObjectStore {
  return new ObjectStore(env as unknown as StorageConfig);
}

export function redisFor(env: Record<string, string>) {
  return connectRedis(env.REDIS_URL!);
}

/** An app name no other test uses. */
export const uniqueApp = (prefix = "app") => `${prefix}-${randomUUID().slice(0, 8)}`;
