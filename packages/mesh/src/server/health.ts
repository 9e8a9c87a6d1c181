import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@shop/api/grpc/health/v1/health_pb";

export { HealthCheckResponse_ServingStatus as ServingStatus } from "@shop/api/grpc/health/v1/health_pb";

/** The serving status of a server and each of its services, as `grpc.health.v1.Health` reports it. */
export interface HealthState {
  /** Sets the status of every service at once (the server's overall status included). */
  setAll(status: ServingStatus): void;
  /** The current status of `service` ("" for the whole server), or undefined when unknown. */
  get(service: string): ServingStatus | undefined;
  /** Calls `listener` on every status change until the returned function is called. */
  subscribe(listener: () => void): () => void;
  /** Adds `grpc.health.v1.Health` (Check, List, Watch) to `router`. */
  register(router: ConnectRouter): void;
}

/** Creates the health state of a server that serves `services`; every status starts NOT_SERVING. */
export function createHealthState(services: readonly string[]): HealthState {
  const statuses = new Map<string, ServingStatus>(
    ["", ...services].map((name) => [name, ServingStatus.NOT_SERVING]),
  );
  const listeners = new Set<() => void>();
  const state: HealthState = {
    setAll(status) {
      let changed = false;
      for (const name of statuses.keys()) {
        if (statuses.get(name) !== status) changed = true;
        statuses.set(name, status);
      }
      if (changed) for (const listener of listeners) listener();
    },
    get: (service) => statuses.get(service),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    register(router) {
      router.service(Health, {
        check(req) {
          const status = statuses.get(req.service);
          if (status === undefined) {
            throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
          }
          return { status };
        },
        list() {
          const entries = [...statuses].map(([name, status]) => [name, { status }] as const);
          return { statuses: Object.fromEntries(entries) };
        },
        async *watch(req, context) {
          const current = (): HealthCheckResponse =>
            create(HealthCheckResponseSchema, {
              status: statuses.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN,
            });
          // `changed` remembers a change that happens while the client is still reading the
          // previous status, so that it is not lost before the next wait begins.
          let changed = false;
          let wake: (() => void) | undefined;
          const unsubscribe = state.subscribe(() => {
            changed = true;
            wake?.();
          });
          const onAbort = () => wake?.();
          context.signal.addEventListener("abort", onAbort);
          try {
            let last = current();
            yield last;
            while (!context.signal.aborted || changed) {
              if (!changed) {
                await new Promise<void>((resolve) => {
                  wake = resolve;
                });
              }
              changed = false;
              const next = current();
              // Sent even when the server is shutting down: NOT_SERVING is what the watcher
              // must hear then, before the stream ends.
              if (next.status !== last.status) {
                last = next;
                yield next;
              }
            }
          } finally {
            unsubscribe();
            context.signal.removeEventListener("abort", onAbort);
          }
        },
      });
    },
  };
  return state;
}
