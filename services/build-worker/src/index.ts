/** The build worker's front door: `start(config, logger)` consumes the builds queue until `close(graceMs)`. */
export { startBuildWorker as start, type RunningWorker } from "./worker";
export type { WorkerContext } from "./context";
