export { freePort, waitForPort } from "./free-port";
export { startRedisServer, stopChild, type EmbeddedServer } from "./redis-server";
export { startS3Server, findMinioBinary, type EmbeddedS3 } from "./s3-server";
