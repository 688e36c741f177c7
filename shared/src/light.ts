/**
 * The light entry: the contracts and helpers that load no Redis, storage, logging or archive
 * client (a test checks), for the CLI. Browsers import `@slipway/shared/contracts`, which has no
 * Node APIs either.
 */
export * from "./contracts/index";
export { hashFile, listResources, RESOURCE_MANIFEST, type ResourceEntry } from "./resource-list";
export { isLoopbackHost, LOCAL_TOKEN_FILE, readLocalToken } from "./local-token";
export { heartbeatFile, heartbeatProblem, pingsWithin, startHeartbeat, type Heartbeat as HeartbeatFile } from "./heartbeat-file";
export { CoalescedPass } from "./coalesced";
