import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import {
  ARCHIVE_EXTENSIONS,
  builtVenvPath,
  extractStream,
  ObjectNotFoundError,
  packDirectory,
  relocateVenv,
  storageKeys,
  type Compression,
  type ObjectStore,
} from "@slipway/shared";

/** Bumped when the layout of cached layers changes, so old entries are never misread. */
const CACHE_FORMAT = "1";

/** Build options that never change what an install produces. */
const NOT_INSTALL_INPUTS = new Set(["PRE_BUILD_COMMAND", "POST_BUILD_COMMAND", "DISABLE_COLLECTSTATIC"]);

export interface CacheKey {
  /** What the layer is: "antenv", "node_modules". */
  layer: string;
  /** Everything that decides the layer's content: lock file text, runtime version, ... */
  inputs: Record<string, string>;
}

/**
 * Installed dependency layers in object storage, keyed by a hash of what produced them, so a
 * rebuild with unchanged inputs on any worker restores the layer instead of reinstalling it.
 */
export class DependencyCache {
  constructor(
    private readonly store: ObjectStore,
    private readonly app: string,
    /** The build environment: its install settings (indexes, registries, options) are inputs too. */
    private readonly env: Record<string, string>,
    private readonly compression: Compression,
    readonly enabled: boolean,
    private readonly log: (line: string) => void,
  ) {}

  objectKey(key: CacheKey): string {
    const inputs: Record<string, string> = { format: CACHE_FORMAT, compression: this.compression, ...key.inputs };
    for (const [name, value] of Object.entries(this.env)) if (!NOT_INSTALL_INPUTS.has(name) && name !== "HOME") inputs[`env:${name}`] = value;
    const canonical = JSON.stringify(Object.keys(inputs).sort().map((name) => [name, inputs[name]]));
    const hash = createHash("sha256").update(canonical).digest("hex").slice(0, 32);
    return storageKeys.dependencyCache(this.app, key.layer, hash, ARCHIVE_EXTENSIONS[this.compression]);
  }

  /** Restores the layer into `dir` (which must not exist yet); answers whether it did. */
  async restore(key: CacheKey, dir: string): Promise<boolean> {
    if (!this.enabled) {
      this.log(`Dependency cache bypassed (noCache): installing ${key.layer} afresh`);
      return false;
    }
    const objectKey = this.objectKey(key);
    let body;
    try {
      body = await this.store.getStream(objectKey);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        this.log(`Dependency cache miss for ${key.layer} (${path.basename(objectKey)})`);
        return false;
      }
      throw error;
    }
    try {
      await extractStream(body, dir, { allowExternalSymlinks: true, compression: this.compression });
    } catch (error) {
      // A damaged cache entry costs an install, never a build.
      await rm(dir, { recursive: true, force: true });
      this.log(`Dependency cache entry ${path.basename(objectKey)} is unusable (${(error as Error).message}); installing instead`);
      return false;
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
      this.log(`Saved ${key.layer} to the dependency cache (${packed.bytes} bytes)`);
    } catch (error) {
      this.log(`Could not save ${key.layer} to the dependency cache: ${(error as Error).message}`);
    } finally {
      await rm(scratchFile, { force: true });
    }
  }
}
