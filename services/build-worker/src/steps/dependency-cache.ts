import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import {
  ARCHIVE_EXTENSIONS,
  builtVenvPath,
  extractStream,
  HashingStream,
  ObjectNotFoundError,
  packDirectory,
  recordedSizeLimits,
  relocateVenv,
  storageKeys,
  type CacheDigestRepository,
  type Compression,
  type ObjectStore,
} from "@slipway/shared";
import type { CacheKey, LayerCache } from "../platforms/platform";

/** Bumped when the layout of cached layers changes, so old entries are never misread. */
const CACHE_FORMAT = "1";

/** Build options that never change what an install produces. */
const NOT_INSTALL_INPUTS = new Set([
  "PRE_BUILD_COMMAND",
  "POST_BUILD_COMMAND",
  "PRE_BUILD_SCRIPT_PATH",
  "POST_BUILD_SCRIPT_PATH",
  "RUN_BUILD_COMMAND",
  "DISABLE_COLLECTSTATIC",
  "PRUNE_DEV_DEPENDENCIES",
]);

export interface DependencyCacheOptions {
  store: ObjectStore;
  /** The sha256 of every layer as saved, kept where no build can write. */
  digests: CacheDigestRepository;
  app: string;
  /** The build environment: its install settings (indexes, registries, options) are inputs too. */
  env: Record<string, string>;
  compression: Compression;
  enabled: boolean;
  /** Where layers are packed and downloaded: the build's own scratch directory, never the source. */
  scratchDir: string;
  /** Runs on every restored layer: the build's commands (another uid) must own what they will change. */
  afterRestore?: (dir: string) => Promise<void>;
  /** A line for the build log. */
  log: (line: string) => void;
  /** A line for the build log that operators should see too (a layer that was tampered with). */
  warn: (line: string) => void;
}

/** Bounds on a layer whose record holds no size (saved before sizes were recorded). */
const LAYER_CAPS = { maxUnpackedBytes: 8 * 1024 ** 3, maxEntries: 1_000_000, names: { unpackedBytes: "the 8 GiB layer cap", entries: "the 1,000,000-entry layer cap" } };

/**
 * Installed dependency layers in object storage, keyed by a hash of what produced them, so a
 * rebuild with unchanged inputs on any worker restores the layer instead of reinstalling it. A
 * layer is used only if its bytes hash to the sha256 the saving worker recorded: anything else in
 * storage under that key is ignored, never extracted.
 */
export class DependencyCache implements LayerCache {
  constructor(private readonly options: DependencyCacheOptions) {}

  objectKey(key: CacheKey): string {
    const { compression, env, app } = this.options;
    const inputs: Record<string, string> = { format: CACHE_FORMAT, compression, ...key.inputs };
    for (const [name, value] of Object.entries(env)) if (!NOT_INSTALL_INPUTS.has(name) && name !== "HOME") inputs[`env:${name}`] = value;
    const canonical = JSON.stringify(Object.keys(inputs).sort().map((name) => [name, inputs[name]]));
    const hash = createHash("sha256").update(canonical).digest("hex").slice(0, 32);
    return storageKeys.dependencyCache(app, key.layer, hash, ARCHIVE_EXTENSIONS[compression]);
  }

  /**
   * Restores the layer into `dir` (which must not exist yet), downloading it to the scratch
   * directory first so that nothing of it is unpacked before its sha256 checks out.
   */
  async restore(key: CacheKey, dir: string): Promise<boolean> {
    const { store, digests, app, compression, log, warn } = this.options;
    const scratchFile = path.join(this.options.scratchDir, `cache-${key.layer}.restore`);
    if (!this.options.enabled) {
      log(`Dependency cache bypassed (noCache): installing ${key.layer} afresh`);
      return false;
    }
    const objectKey = this.objectKey(key);
    const name = path.basename(objectKey);
    const expected = await digests.get(app, objectKey);
    let body;
    try {
      body = await store.getStream(objectKey);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        log(`Dependency cache miss for ${key.layer} (${name})`);
        return false;
      }
      throw error;
    }
    try {
      if (expected === undefined) {
        body.destroy();
        warn(`Dependency cache layer ${name} has no sha256 on record: ignored`);
        return false;
      }
      const hashing = new HashingStream();
      await pipeline(body, hashing, createWriteStream(scratchFile));
      if (hashing.digest() !== expected.sha256) {
        warn(`Dependency cache layer ${name} failed its sha256 check: ignored`);
        return false;
      }
      await extractStream(createReadStream(scratchFile), dir, {
        allowExternalSymlinks: true,
        compression,
        ...recordedSizeLimits(expected, LAYER_CAPS, "the size recorded when the layer was saved"),
      });
    } catch (error) {
      // A damaged cache entry costs an install, never a build.
      await rm(dir, { recursive: true, force: true });
      log(`Dependency cache entry ${name} is unusable (${(error as Error).message}); installing instead`);
      return false;
    } finally {
      await rm(scratchFile, { force: true });
    }
    const builtAt = await builtVenvPath(dir);
    if (builtAt) await relocateVenv(dir, builtAt, dir);
    log(`Dependency cache hit: restored ${key.layer} from ${path.basename(objectKey)}`);
    await this.options.afterRestore?.(dir);
    return true;
  }

  /** Saves `dir` as the layer for `key`; a failure is logged, not fatal. */
  async save(key: CacheKey, dir: string): Promise<void> {
    const { store, digests, app, compression, log } = this.options;
    const objectKey = this.objectKey(key);
    const scratchFile = path.join(this.options.scratchDir, `cache-${key.layer}`);
    try {
      const packed = await packDirectory(dir, scratchFile, compression);
      await store.putStream(objectKey, createReadStream(scratchFile));
      await digests.record(app, objectKey, { sha256: packed.sha256, unpackedBytes: packed.unpackedBytes, entries: packed.entries });
      log(`Saved ${key.layer} to the dependency cache (${packed.bytes} bytes)`);
    } catch (error) {
      log(`Could not save ${key.layer} to the dependency cache: ${(error as Error).message}`);
    } finally {
      await rm(scratchFile, { force: true });
    }
  }
}
