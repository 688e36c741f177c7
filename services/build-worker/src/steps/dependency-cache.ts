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

export interface CacheKey {
  /** What the layer is: "antenv", "node_modules". */
  layer: string;
  /** Everything that decides the layer's content: lock file text, runtime version, ... */
  inputs: Record<string, string>;
}

export interface DependencyCacheOptions {
  store: ObjectStore;
  /** The sha256 of every layer as saved, kept where no build can write. */
  digests: CacheDigestRepository;
  app: string;
  /** The build environment: its install settings (indexes, registries, options) are inputs too. */
  env: Record<string, string>;
  compression: Compression;
  enabled: boolean;
  /** A line for the build log. */
  log: (line: string) => void;
  /** A line for the build log that operators should see too (a layer that was tampered with). */
  warn: (line: string) => void;
}

/**
 * Installed dependency layers in object storage, keyed by a hash of what produced them, so a
 * rebuild with unchanged inputs on any worker restores the layer instead of reinstalling it. A
 * layer is used only if its bytes hash to the sha256 the saving worker recorded: anything else in
 * storage under that key is ignored, never extracted.
 */
/** Bounds on a layer whose record holds no size (saved before sizes were recorded). */
const LAYER_CAPS = { maxUnpackedBytes: 8 * 1024 ** 3, maxEntries: 1_000_000, names: { unpackedBytes: "the 8 GiB layer cap", entries: "the 1,000,000-entry layer cap" } };

export class DependencyCache {
  private readonly store: ObjectStore;
  private readonly digests: CacheDigestRepository;
  private readonly app: string;
  private readonly env: Record<string, string>;
  private readonly compression: Compression;
  readonly enabled: boolean;
  private readonly log: (line: string) => void;
  private readonly warn: (line: string) => void;

  constructor(options: DependencyCacheOptions) {
    ({ store: this.store, digests: this.digests, app: this.app, env: this.env, compression: this.compression, enabled: this.enabled, log: this.log, warn: this.warn } = options);
  }

  objectKey(key: CacheKey): string {
    const inputs: Record<string, string> = { format: CACHE_FORMAT, compression: this.compression, ...key.inputs };
    for (const [name, value] of Object.entries(this.env)) if (!NOT_INSTALL_INPUTS.has(name) && name !== "HOME") inputs[`env:${name}`] = value;
    const canonical = JSON.stringify(Object.keys(inputs).sort().map((name) => [name, inputs[name]]));
    const hash = createHash("sha256").update(canonical).digest("hex").slice(0, 32);
    return storageKeys.dependencyCache(this.app, key.layer, hash, ARCHIVE_EXTENSIONS[this.compression]);
  }

  /**
   * Restores the layer into `dir` (which must not exist yet), downloading it to `scratchFile`
   * first so that nothing of it is unpacked before its sha256 checks out; answers whether it did.
   */
  async restore(key: CacheKey, dir: string, scratchFile: string): Promise<boolean> {
    if (!this.enabled) {
      this.log(`Dependency cache bypassed (noCache): installing ${key.layer} afresh`);
      return false;
    }
    const objectKey = this.objectKey(key);
    const name = path.basename(objectKey);
    const expected = await this.digests.get(this.app, objectKey);
    let body;
    try {
      body = await this.store.getStream(objectKey);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        this.log(`Dependency cache miss for ${key.layer} (${name})`);
        return false;
      }
      throw error;
    }
    try {
      if (expected === undefined) {
        body.destroy();
        this.warn(`Dependency cache layer ${name} has no sha256 on record: ignored`);
        return false;
      }
      const hashing = new HashingStream();
      await pipeline(body, hashing, createWriteStream(scratchFile));
      if (hashing.digest() !== expected.sha256) {
        this.warn(`Dependency cache layer ${name} failed its sha256 check: ignored`);
        return false;
      }
      await extractStream(createReadStream(scratchFile), dir, {
        allowExternalSymlinks: true,
        compression: this.compression,
        ...recordedSizeLimits(expected, LAYER_CAPS, "the size recorded when the layer was saved"),
      });
    } catch (error) {
      // A damaged cache entry costs an install, never a build.
      await rm(dir, { recursive: true, force: true });
      this.log(`Dependency cache entry ${name} is unusable (${(error as Error).message}); installing instead`);
      return false;
    } finally {
      await rm(scratchFile, { force: true });
    }
    const builtAt = await builtVenvPath(dir);
    if (builtAt) await relocateVenv(dir, builtAt, dir);
    this.log(`Dependency cache hit: restored ${key.layer} from ${path.basename(objectKey)}`);
    return true;
  }

  /** Saves `dir` as the layer for `key`; a failure is logged, not fatal. */
  async save(key: CacheKey, dir: string, scratchFile: string): Promise<void> {
    const objectKey = this.objectKey(key);
    try {
      const packed = await packDirectory(dir, scratchFile, this.compression);
      await this.store.putStream(objectKey, createReadStream(scratchFile));
      await this.digests.record(this.app, objectKey, { sha256: packed.sha256, unpackedBytes: packed.unpackedBytes, entries: packed.entries });
      this.log(`Saved ${key.layer} to the dependency cache (${packed.bytes} bytes)`);
    } catch (error) {
      this.log(`Could not save ${key.layer} to the dependency cache: ${(error as Error).message}`);
    } finally {
      await rm(scratchFile, { force: true });
    }
  }
}
