export * from "./config";
export * from "./contracts";
export * from "./manifest";
export * from "./storage/index";
export * from "./archive/index";
export * from "./records/index";
export { createLogger, type Logger } from "./log";
export { connectRedis } from "./redis";
