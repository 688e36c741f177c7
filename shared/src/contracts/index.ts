/**
 * Every shape that crosses a process boundary (queue jobs, pub/sub events, Redis records, REST
 * responses), declared once. Pure: zod and nothing else, so browsers and the CLI can load it.
 */
export * from "./ids";
export * from "./jobs";
export * from "./events";
export * from "./records";
export * from "./responses";
export * from "./resources";
export * from "./app-logs";
