import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import {
  type AnyRequest,
  answersWithStream,
  callNext,
  type Next,
  observeStream,
} from "./streams.ts";
import { convertOnce } from "./watch.ts";

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
  // The label sets of each method, made once: prom-client takes them as they are.
  const labelsFor = convertOnce(
    (method: DescMethod): MethodLabels => ({
      call: { rpc_service: method.parent.typeName, rpc_method: method.name },
      outcome: new Map(),
    }),
  );
  const finish = (method: MethodLabels, start: number, error?: unknown) => {
    const code = error === undefined ? "ok" : codeName(ConnectError.from(error).code);
    let outcome = method.outcome.get(code);
    if (outcome === undefined) {
      outcome = { ...method.call, code };
      method.outcome.set(code, outcome);
    }
    duration.observe(outcome, (performance.now() - start) / 1000);
  };
  const measureStream = async (
    next: Next,
    req: AnyRequest,
    method: MethodLabels,
    start: number,
  ) => {
    try {
      const res = await next(req);
      if (!res.stream) {
        finish(method, start);
        return res;
      }
      return {
        ...res,
        message: observeStream(res.message, {
          // A stream that ends because the client went away (or its deadline passed) did not
          // succeed, even when the handler returned quietly on its aborted signal; and one the
          // server stops reading (return()) must be counted too.
          onEnd: ({ error }) =>
            finish(
              method,
              start,
              error ?? (req.signal.aborted ? abortReason(req.signal) : undefined),
            ),
        }),
      };
    } catch (error) {
      finish(method, start, error);
      throw error;
    }
  };
  const interceptor: Interceptor = (next) => (req) => {
    const method = labelsFor(req.method);
    started.inc(method.call);
    const start = performance.now();
    if (answersWithStream(req.method)) return measureStream(next, req, method, start);
    return callNext(next, req).then(
      (res) => {
        finish(method, start);
        return res;
      },
      (error: unknown) => {
        finish(method, start, error);
        throw error;
      },
    );
  };
  return { registry, interceptor };
}

interface MethodLabels {
  call: { rpc_service: string; rpc_method: string };
  /** `call` with each outcome's code. */
  outcome: Map<string, { rpc_service: string; rpc_method: string; code: string }>;
}

/** A Connect code as its snake_case wire name (`invalid_argument`). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new ConnectError("canceled", Code.Canceled);
}
