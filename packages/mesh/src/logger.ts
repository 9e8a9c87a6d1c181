import { type Logger, pino } from "pino";

export type { Logger } from "pino";

/** Creates the JSON logger of one service: one line per event, with the service name on each. */
export function createLogger(service: string, level = "info"): Logger {
  return pino({ name: service, level, base: { service } });
}
