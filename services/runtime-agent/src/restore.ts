import { randomUUID } from "node:crypto";
import { access, lstat, mkdir, readdir, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import {
  builtVenvPath,
  compressionOf,
  hasZstd,
  hostCacheDir,
  ManifestError,
  ObjectNotFoundError,
  parseManifest,
  relocateVenv,
  replaceFile,
  storageKeys,
  ZSTD_MISSING,
  type AgentConfig,
  type BuildManifest,
  type Logger,
  type ObjectStore,
} from "@slipway/shared";
import { appDataPath } from "./app-sandbox";
import { ArtifactExtractor, type Extracted } from "./artifact";
import { HostCache } from "./host-cache";
import { outputFileName as findOutputFileName } from "./oryx-output";
import { RestoreError } from "./restore-error";
import { untilStopping } from "./timeout";

export { RestoreError };

export interface RestoredRelease {
  appPath: string;
  manifest: BuildManifest;
  /** True when a verified extraction from an earlier run was used as it was. */
  reused: boolean;
  /** The host cache tree `appPath` lies over, when it is an overlay's upper directory. */
  lower?: string;
}

/**
 * `overlay`: the release directory holds only what this instance changes, over the host cache's
 * tree, and only a sandbox that mounts the overlay sees the whole release. `copy`: the release
 * directory is a hard-link copy of the whole tree.
 */
export type ReleaseLayout = "overlay" | "copy";

/**
 * The `outputRecordSha256` the worker pinned in a build's record, or undefined when there is
 * none or Redis cannot say: the artifact is then restored the vetted way.
 */
export type PinnedOutputRecord = (buildId: string) => Promise<string | undefined>;

interface RestoreMarker {
  buildId: string;
  outputSha256: string | null;
  restoredAt: string;
  /** The manifest as storage gave it: a restart reuses the directory without asking storage again. */
  manifest?: string;
  /** The host cache tree the directory lies over (layout `overlay`). */
  lower?: string;
}

/** The agent's own directory in a release (marker, profile). */
const AGENT_DIR = ".slipway";
const MARKER = path.join(AGENT_DIR, "restored.json");
const PARTIAL_PREFIX = ".partial-";

/**
 * Turns a build in storage into a directory the app can run from: manifest, then a hard-link
 * copy of the release as the host cache holds it (downloaded with the sha256 checked while
 * streaming and extracted, vetted, by whichever agent on the host needed it first), venv
 * relocation to the final path, marker, then one rename. A directory is used only once its
 * marker exists, so a crash at any point leaves nothing half-done in use.
 */
export class Restorer {
  readonly releasesDir: string;
  private readonly dataPath: string;
  private readonly artifacts: ArtifactExtractor;
  private readonly hostCache: HostCache;

  constructor(
    private readonly store: ObjectStore,
    /** MAX_RESTORE_*: hard caps on what one release may unpack to, artifact and separate node_modules together. */
    config: Pick<AgentConfig, "RUNTIME_ROOT" | "HOST_CACHE_DIR" | "MAX_RESTORE_BYTES" | "MAX_RESTORE_ENTRIES" | "FETCH_HELPER">,
    logger: Logger,
    /** The agent's lifetime: once aborted, a download stops and a wait for another agent's extraction ends. */
    private readonly signal?: AbortSignal,
    private readonly pinnedOutputRecord: PinnedOutputRecord = async () => undefined,
  ) {
    this.releasesDir = path.join(config.RUNTIME_ROOT, "releases");
    this.dataPath = appDataPath(config.RUNTIME_ROOT);
    this.artifacts = new ArtifactExtractor(store, config, signal, config.FETCH_HELPER === "node" ? undefined : config.FETCH_HELPER);
    this.hostCache = new HostCache(hostCacheDir(config), logger, signal);
  }

  releasePath(buildId: string): string {
    return path.join(this.releasesDir, buildId);
  }

  /** Removes what a crash mid-restore leaves behind: partial and unverified directories. */
  async removeLeftovers(): Promise<string[]> {
    await mkdir(this.releasesDir, { recursive: true });
    const removed: string[] = [];
    for (const name of await readdir(this.releasesDir)) {
      const dir = path.join(this.releasesDir, name);
      if (name.startsWith(PARTIAL_PREFIX) || !(await readMarker(dir))) {
        await rm(dir, { recursive: true, force: true });
        removed.push(name);
      }
    }
    return removed;
  }

  private async fetchManifestText(app: string, buildId: string): Promise<string> {
    try {
      return await untilStopping(this.store.getText(storageKeys.manifest(app, buildId)), this.signal);
    } catch (error) {
      if (error instanceof ObjectNotFoundError) throw new RestoreError(`build ${buildId} has no manifest in storage (${error.key})`);
      throw error;
    }
  }

  /**
   * `onStage` hears each step as it begins, for an operator watching a slow restore. `layout`
   * applies to a new restore; a directory restored earlier is reused in the layout it has.
   */
  async restore(
    app: string,
    buildId: string,
    onStage: (stage: string) => void = () => undefined,
    layout: ReleaseLayout = "copy",
    /**
     * Hands the new release directory to the app (its owner and modes) before it is renamed into
     * place: the only moment no app can change the tree, so root's walk over it follows nothing
     * an app made. A directory restored earlier is never walked again.
     */
    prepare: (dir: string, overlaid: boolean) => Promise<void> = async () => undefined,
  ): Promise<RestoredRelease> {
    const appPath = this.releasePath(buildId);
    const marker = await readMarker(appPath);
    // An overlay's upper directory is a release only while the tree under it is there.
    const usable = marker?.buildId === buildId && (marker.lower === undefined || (await exists(marker.lower)));
    const reused = (manifest: BuildManifest) => ({ appPath, manifest, reused: true, ...(marker?.lower ? { lower: marker.lower } : {}) });
    // A directory restored and marked complete here keeps the manifest it came from: a restart
    // starts from it without waiting for storage.
    if (usable && marker.manifest !== undefined) {
      const manifest = parseStoredManifest(marker.manifest);
      if (marker.outputSha256 === (manifest.outputSha256 ?? null)) return reused(manifest);
    }
    onStage("reading the manifest from storage");
    const manifestText = await this.fetchManifestText(app, buildId);
    const manifest = parseStoredManifest(manifestText);
    if (usable && marker.outputSha256 === (manifest.outputSha256 ?? null)) return reused(manifest);
    await rm(appPath, { recursive: true, force: true });
    await mkdir(this.releasesDir, { recursive: true });
    const partial = path.join(this.releasesDir, `${PARTIAL_PREFIX}${buildId}-${randomUUID().slice(0, 8)}`);
    try {
      const outputSha256 = manifest.outputSha256 ?? null;
      const extract = (into: string) => this.extract(app, buildId, manifest, into);
      let lower: string | undefined;
      if (layout === "overlay") {
        lower = await this.hostCache.lease({ app, buildId, outputSha256, extract, onStage }, appPath);
        await mkdir(partial);
      } else {
        await this.hostCache.copyInto({ app, buildId, outputSha256, extract, onStage }, partial);
      }
      onStage("relocating the virtualenv and writing the profile");
      await requireAgentDirectory(lower ?? partial, partial);
      await relocate(lower ?? partial, partial, appPath, manifest);
      await writeProfile(partial, appPath, this.dataPath, manifest);
      const restoreMarker: RestoreMarker = { buildId, outputSha256, restoredAt: new Date().toISOString(), manifest: manifestText, ...(lower ? { lower } : {}) };
      await replaceFile(path.join(partial, MARKER), JSON.stringify(restoreMarker));
      await prepare(partial, lower !== undefined);
      await rename(partial, appPath);
      return { appPath, manifest, reused: false, ...(lower ? { lower } : {}) };
    } finally {
      await rm(partial, { recursive: true, force: true });
    }
  }

  /** Downloads the build's output (and a separate node_modules), verified, into `into`. */
  private async extract(app: string, buildId: string, manifest: BuildManifest, into: string): Promise<Pick<Extracted, "sealed" | "verifiedBy">> {
    // Oryx with CompressDestinationDir="false" leaves the output uncompressed on its shared volume.
    // Slipway's shared volume is object storage, which holds files, not a tree, so such a build must
    // still come with output.tar.zst or output.tar.gz beside its manifest; node_modules may come separately (below).
    const outputFileName = await findOutputFileName(this.store, app, buildId, manifest);
    const compression = compressionOf(outputFileName);
    if (!compression) throw new RestoreError(`unsupported output file ${outputFileName} (expected .tar.gz or .tar.zst)`);
    if (compression === "zstd" && !hasZstd()) throw new RestoreError(`${outputFileName}: ${ZSTD_MISSING}`);
    const pinned = await this.pinnedOutputRecord(buildId);
    const restored: Extracted = await this.artifacts.extractVerified(storageKeys.artifact(app, buildId, outputFileName), into, manifest, compression, outputFileName, pinned);
    const separate = await this.artifacts.extractSeparateNodeModules(app, buildId, into, manifest, restored.summary);
    return { sealed: restored.sealed && !separate, verifiedBy: restored.verifiedBy };
  }

  /** Resolves once the host cache's work left running after a restore returned (an entry's fingerprint) is done. */
  settled(): Promise<void> {
    return this.hostCache.settled();
  }

  /**
   * Keeps the newest `keep` verified release directories (and always `inUse`), deleting the rest,
   * then the host cache's entries no instance links to any more.
   */
  async prune(keep: number, inUse: string[]): Promise<string[]> {
    const entries: { dir: string; restoredAt: string }[] = [];
    for (const name of await readdir(this.releasesDir).catch(() => [] as string[])) {
      if (name.startsWith(PARTIAL_PREFIX)) continue;
      const dir = path.join(this.releasesDir, name);
      const marker = await readMarker(dir);
      if (marker) entries.push({ dir, restoredAt: marker.restoredAt });
    }
    entries.sort((a, b) => b.restoredAt.localeCompare(a.restoredAt));
    const removed: string[] = [];
    for (const [index, entry] of entries.entries()) {
      if (index < keep || inUse.includes(entry.dir)) continue;
      await rm(entry.dir, { recursive: true, force: true });
      removed.push(entry.dir);
    }
    await this.hostCache.prune();
    return removed;
  }
}

function parseStoredManifest(text: string): BuildManifest {
  try {
    return parseManifest(text);
  } catch (error) {
    if (error instanceof ManifestError) throw new RestoreError(error.message);
    throw error;
  }
}

async function readMarker(dir: string): Promise<RestoreMarker | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, MARKER), "utf8")) as RestoreMarker;
  } catch {
    return undefined;
  }
}

/** Rewrites the venv of the tree in `releaseDir` for `finalDir`, into `writeDir` (the same tree, or an overlay's upper directory). */
async function relocate(releaseDir: string, writeDir: string, finalDir: string, manifest: BuildManifest): Promise<void> {
  const venvName = manifest.virtualEnvName;
  if (!venvName) return;
  const venvDir = path.join(releaseDir, venvName);
  const builtAt = manifest.sourceDirectoryInBuildContainer
    ? path.join(manifest.sourceDirectoryInBuildContainer, venvName)
    : await builtVenvPath(venvDir);
  if (builtAt) await relocateVenv(venvDir, builtAt, path.join(finalDir, venvName), path.join(writeDir, venvName));
}

const exists = (file: string) => access(file).then(() => true, () => false);

/**
 * `.slipway/` is the agent's: root writes the profile and the marker there, and an operator
 * sources the profile as root. A build may ship files below it (`.slipway/node`), but an output
 * whose `.slipway` is a link (which may lead anywhere on the host) or not a directory is refused.
 * The tree checked is not yet any app's to change: a copy made for this restore, or the host
 * cache's sealed tree under a fresh overlay directory.
 */
async function requireAgentDirectory(releaseTree: string, writeDir: string): Promise<void> {
  const shipped = await lstat(path.join(releaseTree, AGENT_DIR)).catch(() => undefined);
  if (shipped && !shipped.isDirectory()) {
    throw new RestoreError(`the build's output has ${AGENT_DIR} as ${shipped.isSymbolicLink() ? "a symbolic link" : "something other than a directory"}: that directory is the runtime agent's own`);
  }
  await mkdir(path.join(writeDir, AGENT_DIR), { recursive: true });
  const made = await lstat(path.join(writeDir, AGENT_DIR));
  if (!made.isDirectory()) throw new RestoreError(`${AGENT_DIR} of the release is not a directory`);
}

/** A shell word for a path the agent chose. */
const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/**
 * `.slipway/profile.sh`: `. $RUNTIME_ROOT/current/.slipway/profile.sh` gives an operator the app's
 * environment. It sets every variable itself and sources nothing: the venv's `activate`, like
 * every file of the release, is the app's to replace, and the profile is read by root.
 */
async function writeProfile(extractedDir: string, finalDir: string, dataPath: string, manifest: BuildManifest): Promise<void> {
  const venv = manifest.virtualEnvName ? path.join(finalDir, manifest.virtualEnvName) : undefined;
  const nodeBin = manifest.nodeBinDir && !path.isAbsolute(manifest.nodeBinDir) ? path.resolve(finalDir, manifest.nodeBinDir) : undefined;
  const binDirs = [venv && path.join(venv, "bin"), nodeBin?.startsWith(`${finalDir}${path.sep}`) ? nodeBin : undefined].filter((dir): dir is string => dir !== undefined);
  const lines = [
    "# Generated by the Slipway runtime agent: the running app's environment. It sources nothing of the",
    "# release; run the app's commands as the app's uid, never as root (README, \"Security model\").",
    `export APP_PATH=${shellQuote(finalDir)}`,
    `export APP_DATA_PATH=${shellQuote(dataPath)}`,
  ];
  if (venv) lines.push(`export VIRTUAL_ENV=${shellQuote(venv)}`, "unset PYTHONHOME");
  if (binDirs.length) lines.push(`export PATH=${shellQuote(binDirs.join(":"))}":$PATH"`);
  lines.push('cd "$APP_PATH"');
  await replaceFile(path.join(extractedDir, AGENT_DIR, "profile.sh"), `${lines.join("\n")}\n`);
}
