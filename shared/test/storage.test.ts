import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { serviceEnv, storageFor } from "../../test/harness/env";
import { ObjectNotFoundError } from "../src/storage/index";

describe("ObjectStore against a real S3-compatible server", () => {
  it("creates its bucket, and streams objects larger than one part in and out intact", async () => {
    const store = storageFor(serviceEnv());
    await store.ensureBucket();
    await store.ensureBucket(); // idempotent
    const data = randomBytes(20 * 1024 * 1024 + 123);
    // Many small chunks, as a request body arrives.
    const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const result = await store.putStream("builds/x/y/output.tar.gz", Readable.from(chunks));
    expect(result.bytes).toBe(data.length);
    expect((await store.stat("builds/x/y/output.tar.gz"))?.size).toBe(data.length);

    const hash = createHash("sha256");
    for await (const chunk of await store.getStream("builds/x/y/output.tar.gz")) hash.update(chunk as Buffer);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("puts small objects in one request, copies, lists and removes them", async () => {
    const store = storageFor(serviceEnv());
    await store.ensureBucket();
    await store.putStream("a/one", Readable.from([Buffer.from("hello ")  , Buffer.from("world")]));
    expect(await store.getText("a/one")).toBe("hello world");
    await store.copy("a/one", "a/two");
    expect(await store.getText("a/two")).toBe("hello world");
    expect((await store.list("a/")).sort()).toEqual(["a/one", "a/two"]);
    await store.remove("a/one");
    expect(await store.exists("a/one")).toBe(false);
    await expect(store.getStream("a/one")).rejects.toThrow(ObjectNotFoundError);
  });
});
