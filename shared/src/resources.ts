import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { HashingStream } from "./archive/pack";
import { listResources } from "./resource-list";
import { storageKeys } from "./storage/keys";
import type { ObjectStore } from "./storage/object-store";

/** The digests among `wanted` whose bytes the store already holds for `app` (one listing, not one request per file). */
export async function matchResources(store: ObjectStore, app: string, wanted: string[]): Promise<Set<string>> {
  const prefix = storageKeys.resourcesPrefix(app);
  const held = new Set((await store.list(prefix)).map((key) => key.slice(prefix.length)));
  return new Set(wanted.filter((sha) => held.has(sha)));
}

/** Stores the bytes of every file of a source tree the app's resource cache does not hold yet. */
export async function indexResources(store: ObjectStore, app: string, dir: string): Promise<{ added: number; bytes: number }> {
  const files = await listResources(dir);
  const held = await matchResources(store, app, files.map((f) => f.sha256));
  let added = 0;
  let bytes = 0;
  for (const file of files) {
    if (held.has(file.sha256)) continue;
    held.add(file.sha256);
    await store.putStream(storageKeys.resource(app, file.sha256), createReadStream(path.join(dir, file.path)));
    added += 1;
    bytes += file.size;
  }
  return { added, bytes };
}

/** The store's bytes for a resource do not hash to its address: someone other than a worker wrote them. */
export class ResourceDigestError extends Error {
  override name = "ResourceDigestError";
  constructor(readonly sha256: string) {
    super(`the cached bytes of resource ${sha256} failed their sha256 check`);
  }
}

/**
 * Writes the cached bytes of resource `sha256` to `target` (which must not exist yet), checking
 * they hash to that address: resources sit in object storage, where a build holding stolen
 * credentials could rewrite them. Bytes that do not are deleted from the store, so that no later
 * match offers them and the next deploy uploads the file again, and `target` is removed; throws
 * ResourceDigestError then. ObjectNotFoundError when the store has no such resource.
 */
export async function restoreResource(store: ObjectStore, app: string, sha256: string, target: string): Promise<void> {
  const key = storageKeys.resource(app, sha256);
  const hashing = new HashingStream();
  await pipeline(await store.getStream(key), hashing, createWriteStream(target, { flags: "wx" }));
  if (hashing.digest() === sha256) return;
  await rm(target, { force: true });
  await store.remove(key);
  throw new ResourceDigestError(sha256);
}
