import { pino, type Logger } from "pino";

export type { Logger };

/** One JSON line per event on stdout; `service` tells the processes of a stack apart. */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name: service, level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime });
}
