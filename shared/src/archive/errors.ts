/** The archive tries to place something outside its root, or holds an entry type we never extract. */
export class UnsafeArchiveError extends Error {
  override name = "UnsafeArchiveError";
}

/** The bytes are not a readable tar (or tar.gz) archive. */
export class CorruptArchiveError extends Error {
  override name = "CorruptArchiveError";
}

/** The archive is larger, once unpacked, than the caller allows. */
export class ArchiveLimitError extends Error {
  override name = "ArchiveLimitError";
}

/** An artifact's bytes differ from the chunk digests recorded when it was packed. */
export class ChunkVerificationError extends Error {
  override name = "ChunkVerificationError";
}
