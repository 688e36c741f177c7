export { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from "./errors";
export { inspectArchive, createArchiveVetter, type ArchiveLimits, type ArchiveSummary, type InspectOptions } from "./inspect";
export { extractArchive, extractStream } from "./extract";
export { packDirectory, HashingStream, type PackedArchive } from "./pack";
