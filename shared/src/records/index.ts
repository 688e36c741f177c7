export { redisKeys } from "./keys";
export { InvalidIdError } from "./ids";
export { AppRepository, type AppRecord, type AppChanges } from "./apps";
export { BuildRepository, type RebuildOf } from "./builds";
export { ReleaseRepository } from "./releases";
export { InstanceRepository } from "./instances";
export { BuildLogStream, type LogChunk } from "./build-log";
export { RolloutRepository, type RolloutStatus, type RolloutTurn } from "./rollouts";
export { CacheDigestRepository, type LayerRecord } from "./cache-digests";
