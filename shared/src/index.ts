/**
 * The server entry: everything, clients of Redis, object storage and logging included. Processes
 * that need only the contracts and pure helpers import `@slipway/shared/light` instead.
 */
export * from "./light";
export { ensureLocalToken } from "./local-token";
export * from "./config";
export * from "./manifest";
export * from "./storage/index";
export * from "./archive/index";
export * from "./records/index";
export { createLogger, type Logger } from "./log";
export { runService, type RunningService } from "./service";
export { blockingConnection, connectRedis, isRedisTimeout } from "./redis";
export { freePort, waitForPort } from "./embedded/free-port";
export { serveMetrics, type MetricsServer, type MetricsSource } from "./metrics-server";
export {
  chooseServer,
  dependencyNames,
  detectPythonApp,
  detectPythonStartCommand,
  GUNICORN_DEFAULT_ARGS,
  gunicornCommand,
  installedServers,
  pythonScriptCommand,
  uvicornCommand,
  type InstalledServers,
  type PythonAppEntry,
  type PythonFramework,
  type ServerChoice,
} from "./python-start";
export { readUntrustedText } from "./untrusted-file";
export { replaceFile } from "./replace-file";
export { builtVenvPath, relocateVenv } from "./venv-relocate";
export { announceRelease } from "./release-announce";
export { launchConfigKey, type LaunchConfig } from "./launch-config";
export { collectGarbage, type GcDeps } from "./gc";
export { PlacementLoop, type PlacementSettings } from "./placement-loop";
export { indexResources, matchResources, ResourceDigestError, restoreResource } from "./resources";
