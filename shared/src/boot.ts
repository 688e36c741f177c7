/**
 * What a service needs before it loads any client: its configuration, its logger and its run
 * loop (a test checks it loads no Redis, storage or archive client). The runtime agent opens its
 * port with only this loaded.
 */
export { appUrl, ConfigError, loadAgentConfig, loadApiConfig, loadHostConfig, loadRouterConfig, loadWorkerConfig, type AgentConfig, type ApiConfig, type HostConfig, type RouterConfig, type WorkerConfig } from "./config";
export { createLogger, type Logger } from "./log";
export { runService, type RunningService } from "./service";
