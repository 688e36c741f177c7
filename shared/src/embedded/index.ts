export { freePort, waitForPort } from "./free-port";
export { randomSecret, redactUrl, redisHardeningArgs, startRedisServer, stopChild, type EmbeddedRedis, type EmbeddedServer } from "./redis-server";
export { startS3Server, findMinioBinary, type EmbeddedS3, type S3ServerOptions } from "./s3-server";
export { checkSigV4, type S3Credentials, type SignatureCheck } from "./sigv4";
