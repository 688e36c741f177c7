/**
 * One download and extraction per host per release, however many instances run it.
 *
 * The first agent on the host to need a release takes that release's lock (a lock directory in
 * HOST_CACHE_DIR, so agents of every app and instance see it; not Redis, which is about the
 * cluster, not this disk), downloads, verifies and extracts it into the cache, seals the tree
 * and writes the entry's marker last: the artifact's sha256 and a fingerprint of the sealed
 * tree. Agents that wait on the lock find the marker and extract nothing. A tree extracted
 * already sealed (a trusted artifact: see ArtifactExtractor) is placed first and used by its
 * extractor at once, while the fingerprint is taken and the marker written under the lock.
 * Each instance's release directory is then either the upper directory of an overlay over the entry's tree,
 * holding only what the instance changes (`lease`: nothing is copied; a lease file in the entry
 * names the release directory, and keeps the entry while that exists), or a hard-link copy of
 * the entry (`copyInto`: its directories new, its files the cache's inodes). Either way the tree
 * is checked against the fingerprint first, so a tampered or half-pruned entry is never used: it
 * is removed and extracted again.
 *
 * Ownership rule: a shared inode is root's and read-only for good. Nothing may chmod, chown or
 * write into a file of a release directory; whatever an instance changes (venv relocation,
 * profile.sh, its markers, an app replacing a file in a directory it owns) is a new file renamed
 * over the link, seen by that instance alone.
 */
import { randomUUID } from "node:crypto";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { replaceFile, sealTree, type Logger } from "@slipway/shared";
import { RestoreError } from "./restore-error";
import { linkTree, treeFingerprint } from "./release-tree";
import { LOCK_SUFFIX, lockRelease } from "./host-cache-lock";
import { MARKER, readMarker, SEAL, TREE, type EntryMarker, type VerifiedBy } from "./host-cache-marker";
import { inUse, markUsed, writeLease } from "./host-cache-usage";

const PARTIAL_PREFIX = ".partial-";
/** What using a checked entry gave: the result, or that the entry differs from its marker (and why, when known). */
type Use<T> = { used: T } | { failure?: Error };
/**
 * A valid entry: its marker (still being written when the entry was just extracted sealed), and
 * whether this agent saw it made just now, by itself or by the agent whose lock it waited on. A
 * fresh entry needs no check: its tree was fingerprinted moments ago, or is being, from what
 * was extracted. One found already there is always checked.
 */
interface Ensured {
  marker: Promise<EntryMarker>;
  fresh: boolean;
}
/** What an extraction says of the tree it made: `sealed` when its modes need no sealing. */
export type Extract = (into: string) => Promise<{ sealed: boolean; verifiedBy: VerifiedBy }>;
/** A release asked of the cache: extracted with `extract` first unless a valid entry for `outputSha256` is there. */
export interface WantedRelease {
  app: string;
  buildId: string;
  outputSha256: string | null;
  extract: Extract;
  /** Hears each step as it begins. */
  onStage?: (stage: string) => void;
}
/** A copy that keeps failing its check means something keeps changing the entry: give up. */
const COPY_ATTEMPTS = 3;

export class HostCache {
  /** Entries placed before their fingerprint was taken, until their marker is written and their lock given back. */
  private readonly finishing = new Set<Promise<void>>();

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
    /** The agent's lifetime: a wait for another agent's extraction ends when it aborts. */
    private readonly signal?: AbortSignal,
  ) {}

  /** Makes `target` (which must not exist) a copy of the release. */
  async copyInto(wanted: WantedRelease, target: string): Promise<void> {
    await this.useChecked(wanted, "copied", async (ensured, entry): Promise<Use<undefined>> => {
      const marker = await ensured.marker;
      wanted.onStage?.("copying the release from the host cache");
      await rm(target, { recursive: true, force: true });
      // Failing because the entry was pruned meanwhile looks like any other failure: both retry.
      const copyError = await linkTree(path.join(entry, TREE), target).then(() => undefined, (error: Error) => error);
      if (copyError) return { failure: copyError };
      if ((await treeFingerprint(target)) !== marker.fingerprint) return {};
      await markUsed(entry);
      return { used: undefined };
    });
  }

  /**
   * The entry's tree, checked, for the release directory `release` to lie over as an overlay's
   * upper directory. The entry is kept while `release` exists (its lease).
   */
  async lease(wanted: WantedRelease, release: string): Promise<string> {
    return this.useChecked(wanted, "checked", async (ensured, entry): Promise<Use<string>> => {
      wanted.onStage?.("checking the host cache entry");
      // Marked used before the lease is written: pruning spares an entry used lately.
      await markUsed(entry);
      const leased = await writeLease(entry, release);
      if (leased && (ensured.fresh || (await treeFingerprint(path.join(entry, TREE)).catch(() => undefined)) === (await ensured.marker).fingerprint)) return { used: path.join(entry, TREE) };
      return {};
    });
  }

  /**
   * The entry made valid (`ensure`), then `use`d: a use that finds it differs from what was
   * extracted (no `used`) has it removed and extracted again, up to COPY_ATTEMPTS times, as
   * something that keeps changing the entry is not waited out.
   */
  private async useChecked<T>(wanted: WantedRelease, what: string, use: (ensured: Ensured, entry: string) => Promise<Use<T>>): Promise<T> {
    const entry = path.join(this.dir, wanted.app, wanted.buildId);
    let failure: Error | undefined;
    for (let attempt = 1; attempt <= COPY_ATTEMPTS; attempt++) {
      const ensured = await this.ensure(entry, wanted);
      const outcome = await use(ensured, entry);
      if ("used" in outcome) return outcome.used;
      failure = outcome.failure;
      this.logger.warn({ entry, err: failure }, "the host cache entry differs from what was extracted; removing it and extracting again");
      await this.discard(entry, await ensured.marker);
    }
    throw failure ?? new RestoreError(`the host cache entry ${entry} kept changing while it was ${what}`);
  }

  /**
   * Removes entries no instance uses any more: no release directory holds a lease on them, no
   * file of theirs has a link outside the cache, and none was used lately. Also what crashed
   * extractions left.
   */
  async prune(): Promise<string[]> {
    const removed: string[] = [];
    for (const app of await readdir(this.dir).catch(() => [] as string[])) {
      const appDir = path.join(this.dir, app);
      for (const name of await readdir(appDir).catch(() => [] as string[])) {
        if (name.endsWith(LOCK_SUFFIX)) continue;
        const buildId = name.startsWith(PARTIAL_PREFIX) ? name.slice(PARTIAL_PREFIX.length).replace(/-[0-9a-f]{8}$/, "") : name;
        const entry = path.join(appDir, name);
        if (!name.startsWith(PARTIAL_PREFIX) && (await inUse(entry))) continue;
        // Skipped while someone holds the release's lock: it is being extracted or replaced.
        const unlock = await this.lock(path.join(appDir, buildId), false).catch(() => undefined);
        if (!unlock) continue;
        try {
          if (!name.startsWith(PARTIAL_PREFIX) && (await inUse(entry))) continue;
          await this.remove(entry);
          removed.push(entry);
        } finally {
          await unlock();
        }
      }
    }
    return removed;
  }

  /** The entry's marker, extracting the release under its lock first when there is no valid one. */
  private async ensure(entry: string, { buildId, outputSha256, extract, onStage = () => undefined }: WantedRelease): Promise<Ensured> {
    const valid = (marker: EntryMarker | undefined) => (marker && marker.seal === SEAL && marker.buildId === buildId && marker.outputSha256 === outputSha256 ? marker : undefined);
    const ready = valid(await readMarker(entry));
    if (ready) return { marker: Promise.resolve(ready), fresh: false };
    await mkdir(path.dirname(entry), { recursive: true, mode: 0o700 });
    onStage("waiting for the host cache lock (another agent may be extracting this release)");
    const unlock = await this.lock(entry, true);
    let unlockLater = false;
    try {
      const extracted = valid(await readMarker(entry));
      if (extracted) return { marker: Promise.resolve(extracted), fresh: true };
      await this.remove(entry);
      const partial = `${path.join(path.dirname(entry), PARTIAL_PREFIX)}${buildId}-${randomUUID().slice(0, 8)}`;
      try {
        await mkdir(path.join(partial, TREE), { recursive: true });
        const started = Date.now();
        onStage("downloading, verifying and extracting the artifact");
        const { sealed, verifiedBy } = await extract(path.join(partial, TREE));
        const marker = (fingerprint: string): EntryMarker => ({ seal: SEAL, buildId, outputSha256, fingerprint, extractedAt: new Date().toISOString(), verifiedBy });
        let made: EntryMarker | undefined;
        if (!sealed) {
          onStage("sealing the host cache entry");
          const [, fingerprint] = await Promise.all([sealTree(path.join(partial, TREE)), treeFingerprint(path.join(partial, TREE), { asSealed: true })]);
          made = marker(fingerprint);
          await writeFile(path.join(partial, MARKER), JSON.stringify(made));
        }
        const placed = await rename(partial, entry).then(() => true, () => false);
        // Only after this agent's lock went stale can another have placed the entry meanwhile.
        if (!placed) {
          const theirs = valid(await readMarker(entry));
          if (!theirs) throw new Error(`could not place the host cache entry ${entry}`);
          return { marker: Promise.resolve(theirs), fresh: true };
        }
        this.logger.info({ entry, ms: Date.now() - started, verifiedBy }, "release extracted into the host cache");
        if (made) return { marker: Promise.resolve(made), fresh: true };
        // A tree extracted sealed was placed before its fingerprint: the caller may use it at once.
        // Without a marker it is nobody else's until the lock is given back, and a crash now
        // leaves it to be replaced.
        unlockLater = true;
        return { marker: this.markWhenFingerprinted(entry, marker, unlock), fresh: true };
      } finally {
        await rm(partial, { recursive: true, force: true });
      }
    } finally {
      if (!unlockLater) await unlock();
    }
  }

  /**
   * Fingerprints the placed entry's tree and writes its marker, then gives its lock back (`unlock`),
   * in the background: `settled()` waits for it. Resolves to the marker written.
   */
  private markWhenFingerprinted(entry: string, marker: (fingerprint: string) => EntryMarker, unlock: () => Promise<void>): Promise<EntryMarker> {
    const written = treeFingerprint(path.join(entry, TREE)).then(async (fingerprint) => {
      const made = marker(fingerprint);
      await replaceFile(path.join(entry, MARKER), JSON.stringify(made));
      return made;
    });
    const done = written
      .then(
        () => undefined,
        (error: Error) => this.logger.warn({ entry, err: error }, "could not fingerprint the host cache entry; the next restore extracts it again"),
      )
      .then(() => unlock())
      .catch((error: Error) => this.logger.warn({ entry, err: error }, "could not give the host cache lock back; it goes stale"));
    this.finishing.add(done);
    void done.finally(() => this.finishing.delete(done));
    return written;
  }

  /** Resolves once every entry placed before its fingerprint has its marker (or failed to get one) and its lock back. */
  async settled(): Promise<void> {
    await Promise.all([...this.finishing]);
  }

  private lock(entry: string, wait: boolean): Promise<() => Promise<void>> {
    return lockRelease(entry, { wait, logger: this.logger, ...(this.signal ? { signal: this.signal } : {}) });
  }

  /** Removes the entry unless another agent already replaced what `seen` described. */
  private async discard(entry: string, seen: EntryMarker): Promise<void> {
    const unlock = await this.lock(entry, true);
    try {
      const marker = await readMarker(entry);
      if (!marker || marker.fingerprint === seen.fingerprint) await this.remove(entry);
    } finally {
      await unlock();
    }
  }

  /** Renamed away before it is deleted, so a copy under way fails instead of copying half a tree. */
  private async remove(entry: string): Promise<void> {
    const doomed = `${path.join(path.dirname(entry), PARTIAL_PREFIX)}removed-${randomUUID().slice(0, 8)}`;
    const moved = await rename(entry, doomed).then(() => true, () => false);
    if (moved) await rm(doomed, { recursive: true, force: true });
  }
}
