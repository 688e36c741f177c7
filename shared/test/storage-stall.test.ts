import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { serviceEnv } from "../../test/harness/env";
import { stallingRelay } from "../../test/harness/stalling-relay";
import { ObjectStore, StorageStalledError, type StorageConfig } from "../src/index";

const relays: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});

async function storeBehindRelay() {
  const env = serviceEnv();
  const direct = new ObjectStore(env as unknown as StorageConfig);
  await direct.ensureBucket();
  const relay = await stallingRelay(new URL(env.S3_ENDPOINT!));
  relays.push(relay);
  const config = { ...env, S3_ENDPOINT: relay.endpoint, S3_IDLE_TIMEOUT_S: 1 } as unknown as StorageConfig;
  // No retries: each case is about one request.
  return { direct, relay, store: new ObjectStore(config, { delaysMs: [] }) };
}

describe("a storage connection that stops moving data", () => {
  it("fails a download stalled in the middle of its body with StorageStalledError, instead of waiting for ever", async () => {
    const { direct, relay, store } = await storeBehindRelay();
    await direct.putBuffer("big", randomBytes(4 * 1024 * 1024));
    relay.holdAfter(256 * 1024);
    const body = await store.getStream("big");
    let received = 0;
    const failure = await (async () => {
      for await (const chunk of body) received += (chunk as Buffer).length;
    })().then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure).toBeInstanceOf(StorageStalledError);
    expect(received).toBeLessThan(4 * 1024 * 1024);
  });

  it("fails a request whose answer never comes", async () => {
    const { direct, relay, store } = await storeBehindRelay();
    await direct.putBuffer("small", "hello");
    relay.holdAfter(0);
    await expect(store.getText("small")).rejects.toBeInstanceOf(StorageStalledError);
  });

  it("keeps a connection that goes quiet between requests usable, and counts a stall as transient", async () => {
    const { direct, store } = await storeBehindRelay();
    await direct.putBuffer("small", "hello");
    expect(await store.getText("small")).toBe("hello");
    // Longer than the idle timeout: a pooled connection is cut quietly, the next request opens another.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await store.getText("small")).toBe("hello");
    const { isTransientStorageError } = await import("../src/index");
    expect(isTransientStorageError(new StorageStalledError("x"))).toBe(true);
  });
});
