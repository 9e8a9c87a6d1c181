import { type Logger, pino } from "pino";
import { traceFields } from "./tracing.ts";

export type { Logger } from "pino";

/**
 * Creates the JSON logger of one service: one line per event, with the service name on each and,
 * inside a traced call, its trace and span ids.
 */
export function createLogger(service: string, level = "info"): Logger {
  return pino({ name: service, level, base: { service }, mixin: traceFields });
}
