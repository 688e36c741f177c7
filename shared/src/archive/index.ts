export { ArchiveLimitError, ChunkVerificationError, CorruptArchiveError, UnsafeArchiveError } from "./errors";
export { inspectArchive, createArchiveVetter, type ArchiveLimits, type ArchiveSummary, type InspectOptions } from "./inspect";
export { extractArchive, extractChunkVerified, extractStream, type ExtractOptions } from "./extract";
export { recordedSizeLimits, type RestoreCaps } from "./limits";
export { ARTIFACT_CHUNK_BYTES, packDirectory, HashingStream, type PackedArchive } from "./pack";
export { ARCHIVE_EXTENSIONS, compressionOf, hasZstd, ZSTD_MISSING, type Compression } from "./compression";
export { extractZip } from "./zip";
export { sealTree, sealedMode } from "./seal";
