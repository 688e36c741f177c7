import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ChunkVerificationError, CorruptArchiveError, isTransientStorageError, ObjectNotFoundError, ObjectStore, storageKeys, type Compression } from "@slipway/shared";
import { fetchWithHelper, type HelperFetch } from "../src/fetch-helper";
import { AgentStopping } from "../src/timeout";
import { archivePastItsEnd, chunkDigests, packedInChunks, treeListing, zstdCompress } from "../../../test/harness/chunked";
import { fetchHelper } from "../../../test/harness/entries";
import { serviceEnv, storageFor } from "../../../test/harness/env";
import { listen } from "../../../test/harness/http";
import { processRunning } from "../../../test/harness/stack";

const goInstalled = spawnSync("go", ["version"]).status === 0;

it("slipway-fetch is built beside the compiled agent wherever Go is installed", () => {
  expect(existsSync(fetchHelper)).toBe(goInstalled);
});

// Without Go there is no helper to test; the agent then restores with node alone (artifact tests).
describe.runIf(existsSync(fetchHelper))("slipway-fetch", () => {
  let work: string;
  beforeEach(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), "slipway-fetch-"));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });
  const dest = () => path.join(work, "dest");

  /** A loopback server answering every request with `respond`; the URL carries a stand-in for a presigned URL's signature. */
  async function serving(respond: (response: ServerResponse) => void) {
    const server = await listen((_request, response) => respond(response));
    return { url: `${server.url}/bucket/output?X-Amz-Signature=s3cr3t-signature`, close: server.close };
  }
  const request = (url: string, compression: Compression, chunkSha256s: string[], extra: Partial<HelperFetch> = {}): HelperFetch => ({
    url,
    key: "apps/x/output",
    destDir: dest(),
    compression,
    chunkBytes: 4096,
    chunkSha256s,
    idleTimeoutMs: 30_000,
    ...extra,
  });

  describe("from a real object store, through a presigned URL", () => {
    let store: ObjectStore;
    beforeAll(async () => {
      store = storageFor(serviceEnv());
      await store.ensureBucket();
    });

    for (const compression of ["zstd", "gzip"] as const) {
      it(`extracts a ${compression} artifact whose every chunk matches, modes and times as packed`, async () => {
        const { src, packed, chunkSha256s } = await packedInChunks(work, compression, 4096);
        expect(chunkSha256s.length).toBeGreaterThan(3);
        const key = storageKeys.artifact("fetch", `b-${compression}`, path.basename(packed.file));
        await store.putBuffer(key, await readFile(packed.file));
        await fetchWithHelper(fetchHelper, { ...request(await store.presignedGetUrl(key), compression, chunkSha256s), key });
        expect(treeListing(dest())).toEqual(treeListing(src));
      });
    }

    it("says an object that is not there is not there", async () => {
      const key = storageKeys.artifact("fetch", "missing", "output.tar.zst");
      await expect(fetchWithHelper(fetchHelper, { ...request(await store.presignedGetUrl(key), "zstd", ["0".repeat(64)]), key })).rejects.toThrow(ObjectNotFoundError);
    });
  });

  it("passes tar no byte of a chunk that differs from its digest", async () => {
    const { bytes, chunkSha256s } = await packedInChunks(work, "zstd", 4096);
    const tampered = Buffer.from(bytes);
    tampered[10] = tampered[10]! ^ 0xff;
    const store = await serving((response) => response.end(tampered));
    try {
      const refused = fetchWithHelper(fetchHelper, request(store.url, "zstd", chunkSha256s));
      await expect(refused).rejects.toThrow(ChunkVerificationError);
      await expect(refused).rejects.toThrow(/its sha256 differs from the manifest's in chunk 1 of \d+/);
      expect(await readdir(dest())).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("refuses an artifact cut short or running on past its recorded chunks", async () => {
    const { bytes, chunkSha256s } = await packedInChunks(work, "gzip", 4096);
    // The first two chunks whole, then bytes past the last chunk recorded (the second).
    const twoChunksAndMore = { body: Buffer.concat([bytes.subarray(0, 4096 * 2), Buffer.alloc(10)]), recorded: chunkSha256s.slice(0, 2) };
    for (const [{ body, recorded }, refusal] of [
      [{ body: bytes.subarray(0, 4096 * 2), recorded: chunkSha256s }, /it ends after 2 of its \d+ recorded chunks/],
      [twoChunksAndMore, /it goes on past its 2 recorded chunks/],
    ] as const) {
      const store = await serving((response) => response.end(body));
      try {
        await rm(dest(), { recursive: true, force: true });
        const refused = fetchWithHelper(fetchHelper, request(store.url, "gzip", [...recorded]));
        await expect(refused).rejects.toThrow(ChunkVerificationError);
        await expect(refused).rejects.toThrow(refusal);
      } finally {
        await store.close();
      }
    }
  });

  it("extracts an archive whose tar stream goes on past its end-of-archive blocks, where GNU tar stops reading", async () => {
    const bytes = await archivePastItsEnd(work);
    const store = await serving((response) => response.end(bytes));
    try {
      await fetchWithHelper(fetchHelper, request(store.url, "zstd", chunkDigests(bytes, 4096)));
      expect(await readFile(path.join(dest(), "app.py"), "utf8")).toBe("print('hi')\n");
    } finally {
      await store.close();
    }
  });

  it.each([
    // The decompressor's own reason, not tar's complaint about the nothing it got.
    ["not zstd", () => Buffer.from("not a zstd stream at all"), /could not read the archive: zstd: .*unsupported format/],
    // zstd is content; tar says what it is not.
    ["zstd, but not a tar archive", () => zstdCompress(Buffer.alloc(20_000, "x")), /could not read the archive: tar: This does not look like a tar archive/],
  ])("fails on bytes it cannot extract, even when they match their digests: %s", async (_, bytes, reason) => {
    const garbage = bytes();
    const store = await serving((response) => response.end(garbage));
    try {
      const refused = fetchWithHelper(fetchHelper, request(store.url, "zstd", chunkDigests(garbage, 4096)));
      await expect(refused).rejects.toThrow(CorruptArchiveError);
      await expect(refused).rejects.toThrow(reason);
    } finally {
      await store.close();
    }
  });

  it("reports a store that cannot be reached or answers 5xx as worth another try, never showing the URL", async () => {
    const busy = await serving((response) => {
      response.statusCode = 503;
      response.end("<Error><Code>SlowDown</Code></Error>");
    });
    const closed = await serving(() => undefined);
    await closed.close();
    try {
      for (const url of [busy.url, closed.url]) {
        const failure = await fetchWithHelper(fetchHelper, request(url, "zstd", ["0".repeat(64)])).then(
          () => undefined,
          (error: Error) => error,
        );
        expect(failure).toBeInstanceOf(Error);
        expect(isTransientStorageError(failure)).toBe(true);
        expect(failure!.message).not.toContain("s3cr3t");
      }
    } finally {
      await busy.close();
    }
  });

  it("over https, refuses a certificate the system does not trust, for good, and takes one SSL_CERT_FILE trusts", async () => {
    const { bytes, chunkSha256s } = await packedInChunks(work, "zstd", 4096);
    const [key, cert] = [path.join(work, "key.pem"), path.join(work, "cert.pem")];
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (_request, response) => response.end(bytes));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/bucket/output`;
    try {
      const refused = await fetchWithHelper(fetchHelper, request(url, "zstd", chunkSha256s)).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(refused?.message).toMatch(/the store's certificate is not trusted/);
      expect(isTransientStorageError(refused)).toBe(false);
      process.env.SSL_CERT_FILE = cert;
      await fetchWithHelper(fetchHelper, request(url, "zstd", chunkSha256s)).finally(() => delete process.env.SSL_CERT_FILE);
      expect(await readdir(dest())).toContain("antenv");
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("says when the configured helper cannot start", async () => {
    await expect(fetchWithHelper(path.join(work, "no-such-helper"), request("http://127.0.0.1:1/x", "zstd", ["0".repeat(64)]))).rejects.toThrow(/slipway-fetch \(.*no-such-helper\) could not start: .*ENOENT/);
  });

  it("does not follow a redirect away from the store", async () => {
    let followed = false;
    const elsewhere = await serving((response) => {
      followed = true;
      response.end("");
    });
    const store = await serving((response) => {
      response.writeHead(307, { location: elsewhere.url });
      response.end();
    });
    try {
      await expect(fetchWithHelper(fetchHelper, request(store.url, "zstd", ["0".repeat(64)]))).rejects.toThrow(/the store answered 307/);
      expect(followed).toBe(false);
    } finally {
      await store.close();
      await elsewhere.close();
    }
  });

  describe("a download that stops moving", () => {
    let stalled: Awaited<ReturnType<typeof serving>>;
    beforeAll(async () => {
      // Headers and a first part, then nothing.
      stalled = await serving((response) => {
        response.writeHead(200, { "content-length": String(1 << 20) });
        response.write(Buffer.alloc(1000));
      });
    });
    afterAll(async () => {
      await stalled.close();
    });

    it("fails once no byte arrived for the idle timeout", async () => {
      await expect(fetchWithHelper(fetchHelper, request(stalled.url, "zstd", ["0".repeat(64)], { idleTimeoutMs: 300 }))).rejects.toThrow(/the download stalled: no data for 300ms/);
    });

    it("is cut when the agent stops, its tar and zstd with it; none sees the agent's environment", async () => {
      const stopping = new AbortController();
      process.env.SLIPWAY_TEST_SECRET = "agent-only";
      const fetching = fetchWithHelper(fetchHelper, request(stalled.url, "zstd", ["0".repeat(64)]), stopping.signal);
      // Running: its tar has started on the destination.
      const tarPattern = `tar -x -f - .* -C ${dest()}`;
      try {
        await expect.poll(() => processRunning(tarPattern), { timeout: 10_000 }).toBe(true);
      } finally {
        delete process.env.SLIPWAY_TEST_SECRET;
      }
      const tarPid = spawnSync("pgrep", ["-f", tarPattern], { encoding: "utf8" }).stdout.trim().split("\n")[0]!;
      const helperPid = (await readFile(`/proc/${tarPid}/stat`, "utf8")).split(") ")[1]!.split(" ")[1]!;
      // The decompressor feeding tar is the helper's child too.
      const zstdPid = spawnSync("pgrep", ["-P", helperPid, "-x", "zstd"], { encoding: "utf8" }).stdout.trim();
      expect(zstdPid).toMatch(/^\d+$/);
      for (const pid of [tarPid, zstdPid, helperPid]) expect(await readFile(`/proc/${pid}/environ`, "utf8")).not.toContain("SLIPWAY_TEST_SECRET");
      stopping.abort();
      await expect(fetching).rejects.toThrow(AgentStopping);
      await expect.poll(() => processRunning(tarPattern), { timeout: 10_000 }).toBe(false);
      await expect.poll(() => existsSync(`/proc/${zstdPid}`), { timeout: 10_000 }).toBe(false);
    });
  });
});
