export * from "./config";
export * from "./contracts";
export * from "./manifest";
export * from "./storage/index";
export * from "./archive/index";
export * from "./records/index";
export { createLogger, type Logger } from "./log";
export { runService, type RunningService } from "./service";
export { connectRedis } from "./redis";
export { freePort, waitForPort } from "./embedded/free-port";
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
export { builtVenvPath, relocateVenv } from "./venv-relocate";
export { announceRelease } from "./release-announce";
export { collectGarbage, type GcDeps, type GcReport } from "./gc";
export { hashFile, indexResources, listResources, matchResources, RESOURCE_MANIFEST, ResourceDigestError, restoreResource, type ResourceEntry } from "./resources";
