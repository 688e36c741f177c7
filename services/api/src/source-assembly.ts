import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Request } from "express";
import {
  ArchiveLimitError,
  CorruptArchiveError,
  extractArchive,
  ObjectNotFoundError,
  packDirectory,
  RESOURCE_MANIFEST,
  ResourceDigestError,
  resourceListSchema,
  restoreResource,
  UnsafeArchiveError,
  type ObjectStore,
  type ListedResource,
} from "@slipway/shared";
import { errors } from "./errors";
import { storeSourceUpload, type StoredSource } from "./source-upload";

/**
 * A partial upload (`?resources=1`): a tar.gz of the files the server lacked plus
 * `.slipway-resources.json` naming the ones it holds. The full source is assembled from both,
 * vetted like any upload, and stored under its own content address, as a full upload would be.
 */
export async function assembleSource(req: Request, store: ObjectStore, app: string, maxBytes: number): Promise<StoredSource> {
  const work = await mkdtemp(path.join(os.tmpdir(), "slipway-assemble-"));
  try {
    const partialFile = path.join(work, "partial.tar.gz");
    const partial = await storeSourceUpload(req, store, app, maxBytes, "gzip").then(async (stored) => {
      await pipeline(await store.getStream(stored.key), createWriteStream(partialFile));
      return stored;
    });
    const tree = path.join(work, "tree");
    try {
      await extractArchive(partialFile, tree, { maxUnpackedBytes: 4 * maxBytes });
    } catch (error) {
      if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) throw errors.unreadableArchive(error.message);
      throw error;
    }
    let entries: ListedResource[];
    try {
      const listed = resourceListSchema.safeParse(JSON.parse(await readFile(path.join(tree, RESOURCE_MANIFEST), "utf8")));
      if (!listed.success) throw new Error(listed.error.issues.map((issue) => `${issue.path.join(".") || "list"}: ${issue.message}`).join("; "));
      entries = listed.data;
    } catch (error) {
      throw errors.unreadableResourceList(RESOURCE_MANIFEST, (error as Error).message);
    }
    await rm(path.join(tree, RESOURCE_MANIFEST));
    for (const entry of entries) {
      const relative = path.posix.normalize(String(entry.path));
      if (!/^[0-9a-f]{64}$/.test(String(entry.sha256)) || relative.startsWith("../") || relative === ".." || path.posix.isAbsolute(relative)) {
        throw errors.unsafeResourceEntry(entry.path);
      }
      const target = path.join(tree, relative);
      await mkdir(path.dirname(target), { recursive: true });
      try {
        await restoreResource(store, app, entry.sha256, target);
      } catch (error) {
        if (error instanceof ObjectNotFoundError) throw errors.resourceMissing(entry.sha256, relative);
        if (error instanceof ResourceDigestError) throw errors.resourceCorrupt(entry.sha256, relative);
        throw error;
      }
      await chmod(target, Number(entry.mode) & 0o777 || 0o644);
    }
    const full = await packDirectory(tree, path.join(work, "full.tar.gz"));
    const stream = createReadStream(full.file) as unknown as Parameters<typeof storeSourceUpload>[0];
    const stored = await storeSourceUpload(stream, store, app, Number.MAX_SAFE_INTEGER, "gzip");
    if (partial.key !== stored.key) await store.remove(partial.key).catch(() => undefined);
    return stored;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
