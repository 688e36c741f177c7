export { DEFAULT_RECORD_PREFIX, recordKeys, redisKeys, type RecordKeys } from "./keys";
export { InvalidIdError } from "./ids";
export { AppRepository, type AppRecord, type AppChanges } from "./apps";
export { BuildRepository } from "./builds";
export { ReleaseRepository } from "./releases";
export { InstanceRepository } from "./instances";
export { BuildLogStream, type LogChunk } from "./build-log";
export { RolloutRepository, type RolloutStatus, type RolloutTurn } from "./rollouts";
export { CacheDigestRepository, type LayerRecord } from "./cache-digests";
