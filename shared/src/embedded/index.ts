export { freePort, waitForPort } from "./free-port";
export { randomSecret, redactUrl, redisHardeningArgs, startRedisServer, stopChild, type EmbeddedRedis, type EmbeddedServer } from "./redis-server";
export { startS3Server, findMinioBinary, type EmbeddedS3 } from "./s3-server";
