import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { observeStream } from "./streams.ts";

/**
 * Metrics of the process rather than of one server (outbound clients, change feeds); `/metrics`
 * serves them beside the server's own.
 */
export const processRegistry = new Registry();

/** The Prometheus metrics of one process. */
export interface Metrics {
  /** The registry `/metrics` serves. */
  registry: Registry;
  /** Records the duration and outcome of every RPC this server handles. */
  interceptor: Interceptor;
}

/** Creates the metrics of one service process, including Node's default process metrics. */
export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: "rpc_server_duration_seconds",
    help: "Duration of RPCs handled by this server, by method and Connect code; streams count until they end.",
    labelNames: ["rpc_service", "rpc_method", "code"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const started = new Counter({
    name: "rpc_server_started_total",
    help: "RPCs this server started handling, by method.",
    labelNames: ["rpc_service", "rpc_method"],
    registers: [registry],
  });
  const interceptor: Interceptor = (next) => async (req) => {
    const labels = { rpc_service: req.service.typeName, rpc_method: req.method.name };
    started.inc(labels);
    const end = duration.startTimer(labels);
    const finish = (error?: unknown) =>
      end({ code: error === undefined ? "ok" : codeName(ConnectError.from(error).code) });
    try {
      const res = await next(req);
      if (!res.stream) {
        finish();
        return res;
      }
      return {
        ...res,
        message: observeStream(res.message, {
          // A stream that ends because the client went away (or its deadline passed) did not
          // succeed, even when the handler returned quietly on its aborted signal; and one the
          // server stops reading (return()) must be counted too.
          onEnd: ({ error }) =>
            finish(error ?? (req.signal.aborted ? abortReason(req.signal) : undefined)),
        }),
      };
    } catch (error) {
      finish(error);
      throw error;
    }
  };
  return { registry, interceptor };
}

/** A Connect code as its snake_case wire name (`invalid_argument`). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new ConnectError("canceled", Code.Canceled);
}
