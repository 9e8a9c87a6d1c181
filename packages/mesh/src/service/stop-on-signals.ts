import type { Logger } from "pino";
import type { RunningService } from "./start-service.ts";

/**
 * Stops `service` on SIGTERM or SIGINT (health turns NOT_SERVING first, and calls are still served
 * for its DRAIN_DELAY_MS; then calls in flight get `graceMs` to finish), runs `after`, then exits.
 * A second signal exits at once.
 */
export function stopOnSignals(
  service: RunningService,
  logger: Logger,
  options: { graceMs?: number; after?: () => Promise<void> } = {},
): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "shutting down");
    service
      .stop(options.graceMs ?? 5_000)
      .then(() => options.after?.())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, "unclean shutdown");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
