import { readFile } from "node:fs/promises";
import path from "node:path";

/** A host cache entry's marker, written last: what was extracted, and the tree's fingerprint once sealed. */
export interface EntryMarker {
  /** How the tree was sealed: an entry sealed otherwise (by an older agent) is extracted again. */
  seal: typeof SEAL;
  buildId: string;
  outputSha256: string | null;
  fingerprint: string;
  extractedAt: string;
  /** How the artifact's bytes were checked (see ArtifactExtractor): for an operator, and the tests. */
  verifiedBy?: VerifiedBy;
}

/**
 * `slipway-fetch` and `chunks`: each chunk checked against the pinned record before extraction,
 * by the helper or by node; `sha256`: vetted as extracted, the whole file's sha256 checked at the end.
 */
export type VerifiedBy = "slipway-fetch" | "chunks" | "sha256";

/** A release's cache entry: `tree/` (what instances use) and `marker.json`, written last. */
export const MARKER = "marker.json";
export const TREE = "tree";
/** Directories open to all (see sealTree). */
export const SEAL = 2;

export async function readMarker(entry: string): Promise<EntryMarker | undefined> {
  try {
    const marker = JSON.parse(await readFile(path.join(entry, MARKER), "utf8")) as Partial<EntryMarker>;
    if (typeof marker.buildId !== "string" || typeof marker.fingerprint !== "string" || (marker.outputSha256 !== null && typeof marker.outputSha256 !== "string")) return undefined;
    return marker as EntryMarker;
  } catch {
    return undefined;
  }
}
