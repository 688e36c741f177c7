export { ArchiveLimitError, CorruptArchiveError, UnsafeArchiveError } from "./errors";
export { inspectArchive, type ArchiveLimits, type ArchiveSummary, type InspectOptions } from "./inspect";
export { extractArchive } from "./extract";
export { packDirectory, HashingStream, type PackedArchive } from "./pack";
