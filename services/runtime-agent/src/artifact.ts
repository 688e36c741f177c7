import { createHash } from "node:crypto";
import path from "node:path";
import { PassThrough, type Readable } from "node:stream";
import {
  ArchiveLimitError,
  compressionOf,
  CorruptArchiveError,
  extractStream,
  ObjectNotFoundError,
  recordedSizeLimits,
  storageKeys,
  UnsafeArchiveError,
  type AgentConfig,
  type ArchiveSummary,
  type BuildManifest,
  type Compression,
  type ObjectStore,
} from "@slipway/shared";
import { RestoreError } from "./restore-error";
import { AgentStopping, throwIfStopping, untilStopping } from "./timeout";

/**
 * Downloads a build's tarballs and extracts them, within the agent's caps on what one release may
 * unpack to, checking the bytes against the manifest's sha256 and size as they stream.
 */
export class ArtifactExtractor {
  constructor(
    private readonly store: ObjectStore,
    /** Hard caps on what one release may unpack to, artifact and separate node_modules together. */
    private readonly caps: Pick<AgentConfig, "MAX_RESTORE_BYTES" | "MAX_RESTORE_ENTRIES">,
    /** Once aborted, a download under way is cut: its extraction fails and is discarded. */
    private readonly signal?: AbortSignal,
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
   * the app at start-up; restore it the same way when it is stored beside the manifest.
   */
  async extractSeparateNodeModules(app: string, buildId: string, partial: string, manifest: BuildManifest, restored: ArchiveSummary): Promise<void> {
    const fileName = manifest.other.compressedNodeModulesFile;
    if (!fileName) return;
    const compression = compressionOf(fileName);
    if (!compression) throw new RestoreError(`unsupported compressedNodeModulesFile ${fileName}`);
    const key = storageKeys.artifact(app, buildId, fileName);
    let body: Readable;
    try {
      body = await this.download(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return; // the output tarball already holds node_modules
      throw error;
    }
    try {
      // Nothing records its size: only what the caps leave after the artifact.
      const limits = recordedSizeLimits({}, this.remainingCaps(restored));
      await extractStream(body, path.join(partial, "node_modules"), { allowExternalSymlinks: true, compression, ...limits });
    } catch (error) {
      if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError || error instanceof ArchiveLimitError) {
        throw new RestoreError(`${fileName} refused: ${error.message}`);
      }
      throw error;
    }
  }

  /**
   * One pass over the artifact's bytes: hashed, vetted and extracted together into `partial`,
   * stopping at the first entry past the unpacked size or entry count the manifest records (or,
   * when it records none, the agent's caps). The directory is kept only if the sha256 and size
   * then match the manifest.
   */
  async extractVerified(key: string, partial: string, manifest: BuildManifest, compression: Compression, fileName: string): Promise<ArchiveSummary> {
    let body: Readable;
    try {
      body = await this.download(key);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) {
        if (!manifest.compressDestinationDir) {
          throw new RestoreError(`build ${path.basename(path.dirname(key))} is an uncompressed Oryx output (CompressDestinationDir="false") with no ${fileName} in storage: Slipway restores only from a tarball`);
        }
        throw new RestoreError(`artifact ${key} is missing from storage`);
      }
      throw error;
    }
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
    return summary;
  }
}
