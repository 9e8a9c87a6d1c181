import type { DescMethod } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { StatsService } from "@shop/api/shop/mesh/v1/stats_service_pb";
import type { Identity } from "@shop/auth";
import { convertOnce } from "../change-feed/convert-once.ts";
import { callerKey } from "../interceptors/auth.ts";
import type { CallEnd, CallObserver, ObservedCall } from "./call-observers.ts";

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

/** One row of a table's figures over the window. */
interface Figures {
  key: string;
  requestsPerSecond: number;
  errorsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  totalRequests: bigint;
  totalErrors: bigint;
  activeStreams: bigint;
}

const now = () => Math.floor(Date.now() / 1000);
const logGrowth = Math.log(bucketGrowth);

/**
 * Calls by key (a method, a peer) over a sliding window: starts, errors and a latency histogram
 * per second, and totals. Written here rather than read from the Prometheus registry because the
 * dashboard needs rates and percentiles over the last seconds, which a cumulative histogram cannot
 * give without a scraper.
 */
class CallTable {
  private readonly rows = new Map<string, MethodState>();

  stateOf(key: string): MethodState {
    let state = this.rows.get(key);
    if (!state) {
      state = { slots: [], totalRequests: 0, totalErrors: 0, activeStreams: 0 };
      this.rows.set(key, state);
    }
    return state;
  }

  snapshot(): Figures[] {
    const current = now();
    return [...this.rows].map(([key, state]) => {
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
        key,
        requestsPerSecond: started / windowSeconds,
        errorsPerSecond: errors / windowSeconds,
        latencyP50Ms: percentile(latencies, 0.5),
        latencyP99Ms: percentile(latencies, 0.99),
        totalRequests: BigInt(state.totalRequests),
        totalErrors: BigInt(state.totalErrors),
        activeStreams: BigInt(state.activeStreams),
      };
    });
  }
}

/** A call started. */
function startCall(state: MethodState): void {
  state.totalRequests++;
  slotOf(state, now()).started++;
}

/** A call ended: its error (a client's cancel is none) and, for unary calls, its duration. */
function finishCall(state: MethodState, durationMs: number, error: unknown, unary: boolean): void {
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
}

/** A served call ended, as its observer hears it: a stream, or a unary call. */
function endCall(state: MethodState, call: ObservedCall, end: CallEnd): void {
  if (call.streaming) {
    // A stream its client closed was not finished by the server.
    if (!end.closed) finishCall(state, end.durationMs, end.error, false);
    state.activeStreams--;
    return;
  }
  finishCall(state, end.durationMs, end.error, end.error === undefined || !call.req.stream);
}

function slotOf(state: MethodState, second: number): Slot {
  const index = second % windowSeconds;
  let slot = state.slots[index];
  if (!slot || slot.second !== second) {
    slot = { second, started: 0, errors: 0, latencies: new Uint32Array(bucketCount) };
    state.slots[index] = slot;
  }
  return slot;
}

/**
 * The calls this process makes to its upstreams, by upstream ("users"): what the dashboard's
 * topology shows on the edge from this service to each. One table per process, as a process runs
 * one service (services started in one test process share it).
 */
const upstreamCalls = new CallTable();

/** Records one call to `upstream` (the outbound client's), as it ended. */
export function recordUpstreamCall(upstream: string, durationMs: number, error: unknown): void {
  const state = upstreamCalls.stateOf(upstream);
  startCall(state);
  finishCall(state, durationMs, error, true);
}

/** Per-method request rates, error rates and latencies of one server over a sliding window. */
export interface RequestStats {
  /** Counts every call this server handles (see observeCalls); first, so that it sees every outcome. */
  observer: CallObserver<unknown>;
  /** Adds `shop.mesh.v1.StatsService` (WatchStats) to `router`. */
  register(router: ConnectRouter, options: { service: string; shutdownSignal: AbortSignal }): void;
}

/**
 * What the observer keeps of a call: its method's row and its caller's. Made once per method and
 * caller, so that a call allocates nothing for the statistics.
 */
interface CallRows {
  method: MethodState;
  caller: MethodState;
}

/** Creates the live statistics of one server. */
export function createRequestStats(): RequestStats {
  const methods = new CallTable();
  const callers = new CallTable();
  // The rows of each method by caller, found by the method's descriptor; null for the runtime's
  // own services (health, reflection, stats, tap), which are left out of the numbers.
  const rowsOf = convertOnce((method: DescMethod): Map<string, CallRows> | null => {
    const service = method.parent.typeName;
    const own = service.startsWith("grpc.") || service.startsWith("shop.mesh.");
    return own ? null : new Map();
  });
  const observer: CallObserver<CallRows> = {
    start(req) {
      const byCaller = rowsOf(req.method);
      if (byCaller === null) return null;
      const caller = callerGroupOf(req.contextValues.get(callerKey));
      let rows = byCaller.get(caller);
      if (rows === undefined) {
        rows = {
          method: methods.stateOf(`${req.method.parent.typeName}/${req.method.name}`),
          caller: callers.stateOf(caller),
        };
        byCaller.set(caller, rows);
      }
      startCall(rows.method);
      startCall(rows.caller);
      return rows;
    },
    streaming(rows) {
      rows.method.activeStreams++;
      rows.caller.activeStreams++;
    },
    end(rows, call, end) {
      endCall(rows.method, call, end);
      endCall(rows.caller, call, end);
    },
  };

  const asPeers = (table: CallTable) =>
    table
      .snapshot()
      .map(({ key, activeStreams: _streams, ...figures }) => ({ peer: key, ...figures }));

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
              methods: methods
                .snapshot()
                .map(({ key, ...figures }) => ({ method: key, ...figures })),
              upstreams: asPeers(upstreamCalls),
              callers: asPeers(callers),
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

/** The caller of calls from outside the mesh (no service's token). */
const outside = "outside";

/**
 * Who called, as the statistics count callers (and a tap filters them): another service by its
 * name (its token's subject), or `outside` for anyone else.
 */
export function callerGroupOf(identity: Identity | undefined): string {
  return identity?.roles.includes("service") ? identity.subject : outside;
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
