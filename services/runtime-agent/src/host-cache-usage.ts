import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { MARKER, TREE } from "./host-cache-marker";
import { hasLinkedFile } from "./release-tree";

/**
 * What keeps a host cache entry from being pruned: a recent use (its marker's time), a lease
 * file naming a release directory that lies over its tree, or a file of its tree hard-linked
 * into an instance's copy.
 */

/** A file per release directory that lies over the entry's tree, naming it. */
const LEASES = "leases";
/** An entry used this recently is kept even with no copy linked to it yet (a copy may be under way). */
const PRUNE_GRACE_MS = 5 * 60_000;

/** Its marker's time is when the entry was last used: what pruning goes by. */
export async function markUsed(entry: string): Promise<void> {
  const now = new Date();
  await utimes(path.join(entry, MARKER), now, now).catch(() => undefined);
}

/** Records that `release` lies over the entry's tree; false when the lease could not be written. */
export function writeLease(entry: string, release: string): Promise<boolean> {
  const lease = path.join(entry, LEASES, createHash("sha256").update(release).digest("hex").slice(0, 32));
  return mkdir(path.join(entry, LEASES), { recursive: true })
    .then(() => writeFile(lease, release))
    .then(() => true, () => false);
}

export async function inUse(entry: string): Promise<boolean> {
  const used = await stat(path.join(entry, MARKER)).then((info) => info.mtimeMs, () => 0);
  if (Date.now() - used < PRUNE_GRACE_MS) return true;
  return (await leased(entry)) || hasLinkedFile(path.join(entry, TREE)).catch(() => false);
}

/**
 * Whether a release directory that lies over the entry still exists; leases of those gone are
 * removed. A runtime root is visible to every agent on the host, as the uid claims assume too.
 */
async function leased(entry: string): Promise<boolean> {
  let live = false;
  for (const name of await readdir(path.join(entry, LEASES)).catch(() => [] as string[])) {
    const lease = path.join(entry, LEASES, name);
    const release = await readFile(lease, "utf8").catch(() => "");
    if (release && (await stat(release).then(() => true, () => false))) live = true;
    else await rm(lease, { force: true });
  }
  return live;
}
