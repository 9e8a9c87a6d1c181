import type { DescMethod } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { StatsService } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { convertOnce } from "../change-feed/convert-once.ts";
import type { CallObserver } from "./call-observers.ts";

const windowSeconds = 10;
// Latency histogram: bucket i holds durations up to 0.01 ms * 1.15^i, about 7% resolution from
// 10 µs to over an hour, so percentiles are read from counts, not from a sample.
const bucketBase = 0.01;
const bucketGrowth = 1.15;
const bucketCount = 160;

interface Slot {
  second: number;
  started: number;
  errors: number;
  latencies: Uint32Array;
}

interface MethodState {
  slots: Slot[];
  totalRequests: number;
  totalErrors: number;
  activeStreams: number;
}

/** Per-method request rates, error rates and latencies of one server over a sliding window. */
export interface RequestStats {
  /** Counts every call this server handles (see observeCalls); first, so that it sees every outcome. */
  observer: CallObserver<unknown>;
  /** Adds `shop.mesh.v1.StatsService` (WatchStats) to `router`. */
  register(router: ConnectRouter, options: { service: string; shutdownSignal: AbortSignal }): void;
}

/**
 * Creates the live statistics of one server. Written here rather than read from the Prometheus
 * registry because the dashboard needs rates and percentiles over the last seconds, which a
 * cumulative histogram cannot give without a scraper.
 */
export function createRequestStats(): RequestStats {
  const methods = new Map<string, MethodState>();

  const slotOf = (state: MethodState, second: number): Slot => {
    const index = second % windowSeconds;
    let slot = state.slots[index];
    if (!slot || slot.second !== second) {
      slot = { second, started: 0, errors: 0, latencies: new Uint32Array(bucketCount) };
      state.slots[index] = slot;
    }
    return slot;
  };
  const stateOf = (method: string): MethodState => {
    let state = methods.get(method);
    if (!state) {
      state = { slots: [], totalRequests: 0, totalErrors: 0, activeStreams: 0 };
      methods.set(method, state);
    }
    return state;
  };
  // The state of each method, found by the method's descriptor; null for the runtime's own
  // services (health, reflection, stats), which are left out of the numbers.
  const stateFor = convertOnce((method: DescMethod): MethodState | null => {
    const service = method.parent.typeName;
    const own = service.startsWith("grpc.") || service.startsWith("shop.mesh.");
    return own ? null : stateOf(`${service}/${method.name}`);
  });
  const now = () => Math.floor(Date.now() / 1000);
  const logGrowth = Math.log(bucketGrowth);
  const finish = (state: MethodState, durationMs: number, error: unknown, unary: boolean) => {
    const code = error === undefined ? undefined : ConnectError.from(error).code;
    const slot = slotOf(state, now());
    // A client that goes away (ending its watch, say) is not a server error.
    if (code !== undefined && code !== Code.Canceled) {
      state.totalErrors++;
      slot.errors++;
    }
    if (unary) {
      const bucket = Math.min(
        bucketCount - 1,
        Math.max(0, Math.ceil(Math.log(durationMs / bucketBase) / logGrowth)),
      );
      slot.latencies[bucket] = (slot.latencies[bucket] ?? 0) + 1;
    }
  };
  const observer: CallObserver<MethodState> = {
    start(req) {
      const state = stateFor(req.method);
      if (state === null) return null;
      state.totalRequests++;
      slotOf(state, now()).started++;
      return state;
    },
    streaming(state) {
      state.activeStreams++;
    },
    end(state, call, { error, closed, durationMs }) {
      if (call.streaming) {
        // A stream its client closed was not finished by the server.
        if (!closed) finish(state, durationMs, error, false);
        state.activeStreams--;
        return;
      }
      finish(state, durationMs, error, error === undefined || !call.req.stream);
    },
  };

  const snapshot = () => {
    const current = now();
    return [...methods].map(([method, state]) => {
      let started = 0;
      let errors = 0;
      const latencies = new Uint32Array(bucketCount);
      for (const slot of state.slots) {
        if (!slot || current - slot.second >= windowSeconds) continue;
        started += slot.started;
        errors += slot.errors;
        for (let i = 0; i < bucketCount; i++)
          latencies[i] = (latencies[i] ?? 0) + (slot.latencies[i] ?? 0);
      }
      return {
        method,
        requestsPerSecond: started / windowSeconds,
        errorsPerSecond: errors / windowSeconds,
        latencyP50Ms: percentile(latencies, 0.5),
        latencyP99Ms: percentile(latencies, 0.99),
        totalRequests: BigInt(state.totalRequests),
        totalErrors: BigInt(state.totalErrors),
        activeStreams: BigInt(state.activeStreams),
      };
    });
  };

  return {
    observer,
    register(router, options) {
      router.service(StatsService, {
        async *watchStats(req, context) {
          const interval = Math.max(250, req.intervalMs || 1_000);
          const stop = AbortSignal.any([context.signal, options.shutdownSignal]);
          while (!stop.aborted) {
            yield {
              service: options.service,
              time: timestampNow(),
              windowSeconds,
              methods: snapshot(),
            };
            await new Promise<void>((resolve) => {
              const timer = setTimeout(done, interval);
              function done() {
                clearTimeout(timer);
                stop.removeEventListener("abort", done);
                resolve();
              }
              stop.addEventListener("abort", done);
            });
          }
        },
      });
    },
  };
}

/** The upper bound of the bucket holding the `q` quantile, in milliseconds; 0 for no data. */
function percentile(latencies: Uint32Array, q: number): number {
  let total = 0;
  for (const count of latencies) total += count;
  if (total === 0) return 0;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < latencies.length; i++) {
    seen += latencies[i] ?? 0;
    if (seen >= rank) return bucketBase * bucketGrowth ** i;
  }
  return bucketBase * bucketGrowth ** (latencies.length - 1);
}
