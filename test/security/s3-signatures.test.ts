import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ObjectStore } from "@slipway/shared";
import { findMinioBinary, startS3Server, type EmbeddedS3 } from "@slipway/shared/embedded";
import { serviceEnv } from "../harness/env";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "slipway-s3-signatures-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const storeFor = (endpoint: string, accessKey: string, secretKey: string, bucket: string) =>
  new ObjectStore({ S3_ENDPOINT: endpoint, S3_ACCESS_KEY: accessKey, S3_SECRET_KEY: secretKey, S3_BUCKET: bucket, S3_REGION: "us-east-1" }, { delaysMs: [] });

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => "accepted",
    (error: { code?: string }) => error.code ?? String(error),
  );

/** What a client with the wrong secret or none gets from `endpoint`, while the right key pair works. */
async function expectOnlyTheSecretKeyWorks(endpoint: string, accessKey: string, secretKey: string) {
  const bucket = serviceEnv().S3_BUCKET!;
  const good = storeFor(endpoint, accessKey, secretKey, bucket);
  await good.ensureBucket();
  await good.putBuffer("cache/victim/layer", "genuine");

  const forged = storeFor(endpoint, accessKey, `${secretKey}-guess`, bucket);
  expect(await codeOf(forged.putBuffer("cache/victim/layer", "poison"))).toMatch(/^(SignatureDoesNotMatch|AccessDenied)$/);
  expect(await codeOf(forged.getText("cache/victim/layer"))).toMatch(/^(SignatureDoesNotMatch|AccessDenied)$/);
  expect(await codeOf(forged.remove("cache/victim/layer"))).toMatch(/^(SignatureDoesNotMatch|AccessDenied)$/);
  expect(await codeOf(forged.list("cache/"))).toMatch(/^(SignatureDoesNotMatch|AccessDenied)$/);
  expect(await codeOf(storeFor(endpoint, "someone-else", secretKey, bucket).putBuffer("cache/victim/layer", "poison"))).toMatch(/^(InvalidAccessKeyId|AccessDenied)$/);

  // No signature at all: a plain HTTP client.
  const anonymousPut = await fetch(`${endpoint}/${bucket}/cache/victim/layer`, { method: "PUT", body: "poison" });
  expect(anonymousPut.status).toBe(403);
  expect((await fetch(`${endpoint}/${bucket}/cache/victim/layer`)).status).toBe(403);

  expect(await good.getText("cache/victim/layer")).toBe("genuine");
  expect(await good.list("cache/victim/")).toEqual(["cache/victim/layer"]);
  return { good, bucket };
}

describe("S3 requests must be signed with the secret key", () => {
  it("the harness's S3 server refuses a wrong secret, another access key and anonymous requests; the right key pair works", async () => {
    const services = inject("services");
    await expectOnlyTheSecretKeyWorks(services.s3Endpoint, services.s3AccessKey, services.s3SecretKey);
  });

  describe("the embedded s3rver", () => {
    let s3: EmbeddedS3;
    beforeAll(async () => {
      s3 = await startS3Server({ dir: path.join(work, "s3rver"), engine: "s3rver" });
    });
    afterAll(async () => {
      await s3.stop();
    });

    it("verifies Version 4 signatures against a secret of its own start", async () => {
      expect(s3.kind).toBe("s3rver");
      expect(s3.secretKey).not.toBe("S3RVER");
      const { good, bucket } = await expectOnlyTheSecretKeyWorks(s3.url, s3.accessKey, s3.secretKey);
      // Multipart uploads, copies and deletes go through the same check.
      const big = Buffer.alloc(9 * 1024 * 1024, 7);
      const { Readable } = await import("node:stream");
      await good.putStream("big", Readable.from([big]));
      expect((await good.stat("big"))?.size).toBe(big.length);
      await good.copy("big", "big-copy");
      await good.remove("big");
      expect(await good.exists("big")).toBe(false);
      expect(await good.exists("big-copy")).toBe(true);
      expect(await storeFor(s3.url, s3.accessKey, "S3RVER", bucket).exists("big-copy").catch((e: { code: string }) => e.code)).toMatch(/^(SignatureDoesNotMatch|AccessDenied)$/);
    });

    it("serves presigned URLs only as signed: another key or a tampered signature is refused", async () => {
      const bucket = serviceEnv().S3_BUCKET!;
      const good = storeFor(s3.url, s3.accessKey, s3.secretKey, bucket);
      await good.ensureBucket();
      await good.putBuffer("builds/app/b1/output.tar.gz", "artifact");
      await good.putBuffer("builds/app/b2/output.tar.gz", "other");
      const url = await good.presignedGetUrl("builds/app/b1/output.tar.gz");
      expect(await (await fetch(url)).text()).toBe("artifact");
      expect((await fetch(url.replace("/b1/", "/b2/"))).status).toBe(403);
      expect((await fetch(url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`))).status).toBe(403);
      const forged = await storeFor(s3.url, s3.accessKey, "guessed", bucket).presignedGetUrl("builds/app/b1/output.tar.gz");
      const refused = await fetch(forged);
      expect(refused.status).toBe(403);
      expect(await refused.text()).toContain("<Code>SignatureDoesNotMatch</Code>");
    });

    it("a restart on the same data keeps the secret it is given, and a fresh start gets a new one", async () => {
      const dir = path.join(work, "restart");
      const first = await startS3Server({ dir, engine: "s3rver" });
      const port = Number(new URL(first.url).port);
      await first.stop();
      const again = await startS3Server({ dir, port, engine: "s3rver", secretKey: first.secretKey });
      try {
        expect(again.secretKey).toBe(first.secretKey);
        await storeFor(again.url, again.accessKey, first.secretKey, "restart-bucket").ensureBucket();
      } finally {
        await again.stop();
      }
      const fresh = await startS3Server({ dir, engine: "s3rver" });
      await fresh.stop();
      expect(fresh.secretKey).not.toBe(first.secretKey);
    });
  });

  it.runIf(findMinioBinary())("MinIO refuses the same forgeries", async () => {
    const minio = await startS3Server({ dir: path.join(work, "minio"), engine: "minio" });
    try {
      await expectOnlyTheSecretKeyWorks(minio.url, minio.accessKey, minio.secretKey);
    } finally {
      await minio.stop();
    }
  }, 90_000);
});
