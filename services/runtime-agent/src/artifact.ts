import { createHash } from "node:crypto";
import path from "node:path";
import { PassThrough, type Readable } from "node:stream";
import {
  ArchiveLimitError,
  ChunkVerificationError,
  compressionOf,
  CorruptArchiveError,
  extractChunkVerified,
  extractStream,
  ObjectNotFoundError,
  outputRecordSha256,
  recordedSizeLimits,
  storageKeys,
  UnsafeArchiveError,
  type AgentConfig,
  type ArchiveSummary,
  type BuildManifest,
  type Compression,
  type ObjectStore,
} from "@slipway/shared";
import { fetchWithHelper } from "./fetch-helper";
import type { VerifiedBy } from "./host-cache-marker";
import { RestoreError } from "./restore-error";
import { AgentStopping, throwIfStopping, untilStopping } from "./timeout";

/** What an extraction gave: its size, whether its modes are already those a restore seals to, and how its bytes were checked. */
export interface Extracted {
  summary: ArchiveSummary;
  sealed: boolean;
  verifiedBy: VerifiedBy;
}

/**
 * Downloads a build's tarballs and extracts them, within the agent's caps on what one release may
 * unpack to, checking the bytes against the manifest's sha256 and size as they stream: chunk by
 * chunk before any reaches tar, when the manifest's record of them is the one the worker pinned
 * in Redis; otherwise vetted entry by entry as they are extracted and checked whole at the end.
 */
export class ArtifactExtractor {
  constructor(
    private readonly store: ObjectStore,
    /** Hard caps on what one release may unpack to, artifact and separate node_modules together. */
    private readonly caps: Pick<AgentConfig, "MAX_RESTORE_BYTES" | "MAX_RESTORE_ENTRIES">,
    /** Once aborted, a download under way is cut: its extraction fails and is discarded. */
    private readonly signal?: AbortSignal,
    /** slipway-fetch, for chunk-verified restores (see fetch-helper.ts); undefined: node's own path. */
    private readonly fetchHelper?: string,
  ) {}

  /** Opens the object's stream, cut when the agent stops. */
  private async download(key: string): Promise<Readable> {
    throwIfStopping(this.signal);
    const opening = this.store.getStream(key);
    const body = await untilStopping(opening, this.signal).catch((error: Error) => {
      // A stop while the store had not answered yet: whatever it answers later is dropped.
      if (error instanceof AgentStopping) void opening.then((late) => late.destroy(), () => undefined);
      throw error;
    });
    const cut = () => body.destroy(new AgentStopping());
    this.signal?.addEventListener("abort", cut, { once: true });
    body.once("close", () => this.signal?.removeEventListener("abort", cut));
    return body;
  }

  /** The caps left once `used` is unpacked. */
  private remainingCaps(used: ArchiveSummary = { unpackedBytes: 0, entries: 0 }) {
    return {
      maxUnpackedBytes: Math.max(0, this.caps.MAX_RESTORE_BYTES - used.unpackedBytes),
      maxEntries: Math.max(0, this.caps.MAX_RESTORE_ENTRIES - used.entries),
      names: { unpackedBytes: "MAX_RESTORE_BYTES", entries: "MAX_RESTORE_ENTRIES" },
    };
  }

  /**
   * Oryx can ship node_modules as its own tarball (`compressedNodeModulesFile`), extracted into
   * the app at start-up; restore it the same way when it is stored beside the manifest. Answers
   * whether there was one: its modes are the archive's own, so the tree then needs sealing.
   */
  async extractSeparateNodeModules(app: string, buildId: string, partial: string, manifest: BuildManifest, restored: ArchiveSummary): Promise<boolean> {
    const fileName = manifest.other.compressedNodeModulesFile;
    if (!fileName) return false;
    const compression = compressionOf(fileName);
    if (!compression) throw new RestoreError(`unsupported compressedNodeModulesFile ${fileName}`);
    const key = storageKeys.artifact(app, buildId, fileName);
    let body: Readable;
    try {
      body = await this.download(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return false; // the output tarball already holds node_modules
      throw error;
    }
    try {
      // Nothing records its size: only what the caps leave after the artifact.
      const limits = recordedSizeLimits({}, this.remainingCaps(restored));
      await extractStream(body, path.join(partial, "node_modules"), { allowExternalSymlinks: true, compression, ...limits });
      return true;
    } catch (error) {
      if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
        throw new RestoreError(`${fileName} refused: ${error.message}`);
      }
      throw error;
    }
  }

  /**
   * One pass over the artifact's bytes into `partial`. `pinned` is the build record's
   * `outputRecordSha256`: when the manifest's record of its output matches it, the manifest's
   * chunk digests are the packer's, and each chunk is checked against its digest before GNU tar
   * sees any of it (the packer vetted those very bytes). Otherwise the bytes are hashed, vetted
   * and extracted together, stopping at the first entry past the unpacked size or entry count
   * the manifest records (or, when it records none, the agent's caps), and the directory is kept
   * only if the sha256 and size then match the manifest.
   */
  async extractVerified(key: string, partial: string, manifest: BuildManifest, compression: Compression, fileName: string, pinned: string | undefined): Promise<Extracted> {
    const chunked = pinned !== undefined && pinned === outputRecordSha256(manifest) ? this.chunkRecord(manifest) : undefined;
    try {
      if (chunked) {
        const fetched = await this.extractChunks(key, partial, compression, chunked);
        return { summary: chunked.summary, sealed: manifest.outputModesSealed === true, verifiedBy: fetched };
      }
      return await this.extractVetted(key, partial, manifest, compression);
    } catch (error) {
      if (error instanceof ObjectNotFoundError && error.key === key) {
        if (!manifest.compressDestinationDir) {
          throw new RestoreError(`build ${path.basename(path.dirname(key))} is an uncompressed Oryx output (CompressDestinationDir="false") with no ${fileName} in storage: Slipway restores only from a tarball`);
        }
        throw new RestoreError(`artifact ${key} is missing from storage`);
      }
      throw error;
    }
  }

  private async extractVetted(key: string, partial: string, manifest: BuildManifest, compression: Compression): Promise<Extracted> {
    const body = await this.download(key);
    // The bytes are hashed as they arrive, whether or not extraction keeps up with them.
    const hash = createHash("sha256");
    let bytes = 0;
    body.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    const bodyEnded = new Promise<boolean>((resolve) => {
      body.once("end", () => resolve(true));
      body.once("error", () => resolve(false));
      // Closed without either (a connection dropped quietly): it did not end; never wait for ever.
      body.once("close", () => resolve(false));
    });
    const extractInput = new PassThrough();
    body.on("error", (error) => extractInput.destroy(error));
    body.pipe(extractInput);
    const limits = recordedSizeLimits(
      { unpackedBytes: manifest.outputUnpackedBytes, entries: manifest.outputEntryCount },
      this.remainingCaps(),
      "recorded in its manifest",
    );
    let summary: ArchiveSummary;
    try {
      summary = await extractStream(extractInput, partial, { allowExternalSymlinks: true, compression, ...limits });
    } catch (error) {
      if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
        // Bytes that differ from what the build wrote explain a garbled archive better than the archive error does.
        body.unpipe(extractInput);
        body.resume();
        if (manifest.outputSha256 && (await bodyEnded) && hash.digest("hex") !== manifest.outputSha256) {
          throw new RestoreError(`artifact ${key} failed verification: its sha256 differs from the manifest's ${manifest.outputSha256}`);
        }
        throw new RestoreError(`artifact refused: ${error.message}`);
      }
      throw error;
    }
    if (!(await bodyEnded)) throw new Error(`artifact ${key}: the download ended early`);
    const sha256 = hash.digest("hex");
    if (manifest.outputSha256 && sha256 !== manifest.outputSha256) {
      throw new RestoreError(`artifact ${key} failed verification: sha256 ${sha256}, manifest says ${manifest.outputSha256}`);
    }
    if (manifest.outputBytes !== undefined && bytes !== manifest.outputBytes) {
      throw new RestoreError(`artifact ${key} is ${bytes} bytes, manifest says ${manifest.outputBytes}`);
    }
    return { summary, sealed: false, verifiedBy: "sha256" };
  }

  /**
   * The chunks of a pinned manifest that records them whole and within the caps: its bytes are
   * extracted as they are checked, with no vetting (the packer vetted them). One past the caps
   * takes the vetted path, which refuses it naming the cap.
   */
  private chunkRecord(manifest: BuildManifest): { chunkBytes: number; chunkSha256s: string[]; summary: ArchiveSummary } | undefined {
    const { outputChunkSha256s: chunkSha256s, outputChunkBytes: chunkBytes, outputBytes, outputUnpackedBytes, outputEntryCount } = manifest;
    if (!chunkSha256s || !chunkBytes || outputBytes === undefined || outputUnpackedBytes === undefined || outputEntryCount === undefined) return undefined;
    if (chunkSha256s.length !== Math.ceil(outputBytes / chunkBytes)) return undefined;
    if (outputUnpackedBytes > this.caps.MAX_RESTORE_BYTES || outputEntryCount > this.caps.MAX_RESTORE_ENTRIES) return undefined;
    return { chunkBytes, chunkSha256s, summary: { unpackedBytes: outputUnpackedBytes, entries: outputEntryCount } };
  }

  /** Answers which of the two fetched the bytes, the helper or node: both check every chunk before tar sees it. */
  private async extractChunks(key: string, partial: string, compression: Compression, chunked: NonNullable<ReturnType<ArtifactExtractor["chunkRecord"]>>): Promise<VerifiedBy> {
    const { chunkBytes, chunkSha256s } = chunked;
    try {
      if (this.fetchHelper) {
        const helper = this.fetchHelper;
        // Again while the store cannot be reached, as a download opened in node would be.
        await this.store.withRetry(async () => {
          // Long enough for a start delayed by a busy host; the store checks it only when the download begins.
          const url = await this.store.presignedGetUrl(key, 300);
          await fetchWithHelper(helper, { url, key, destDir: partial, compression, chunkBytes, chunkSha256s, idleTimeoutMs: this.store.idleMs }, this.signal);
        });
        return "slipway-fetch";
      }
      await extractChunkVerified(await this.download(key), partial, { compression, chunkBytes, chunkSha256s });
      return "chunks";
    } catch (error) {
      if (error instanceof ChunkVerificationError) throw new RestoreError(`artifact ${key} failed verification: ${error.message}`);
      if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError) throw new RestoreError(`artifact refused: ${error.message}`);
      throw error;
    }
  }
}
