import type { ArchiveLimits, ArchiveSummary } from "./inspect";

/** The limits a restore never goes past, whatever was recorded, and the settings they come from. */
export interface RestoreCaps {
  maxUnpackedBytes: number;
  maxEntries: number;
  /** Named in the refusal, e.g. { unpackedBytes: "MAX_RESTORE_BYTES", entries: "MAX_RESTORE_ENTRIES" }. */
  names: { unpackedBytes: string; entries: string };
}

/**
 * Limits for unpacking an archive Slipway packed itself (an artifact, a dependency-cache layer):
 * what `packDirectory` counted when it packed it, so a swapped or crafted archive is stopped as
 * soon as it outgrows that, and never more than `caps`, all there is when nothing was recorded
 * (an Oryx-built artifact). `recordedAs` names the record in the refusal.
 */
export function recordedSizeLimits(recorded: Partial<ArchiveSummary>, caps: RestoreCaps, recordedAs = "the size recorded when it was packed"): ArchiveLimits {
  const pick = (value: number | undefined, cap: number, capName: string) =>
    value !== undefined && value <= cap ? { limit: value, name: recordedAs } : { limit: cap, name: capName };
  const bytes = pick(recorded.unpackedBytes, caps.maxUnpackedBytes, caps.names.unpackedBytes);
  const entries = pick(recorded.entries, caps.maxEntries, caps.names.entries);
  return { maxUnpackedBytes: bytes.limit, maxEntries: entries.limit, limitNames: { unpackedBytes: bytes.name, entries: entries.name } };
}
