import type { DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import CircuitBreaker from "opossum";
import { Counter, Gauge } from "prom-client";
import { currentCall, recordCalls } from "../interceptors/call-context.ts";
import { processRegistry } from "../observability/metrics.ts";
import { recordUpstreamCall } from "../observability/stats.ts";
import { startClientSpan } from "../observability/tracing.ts";
import { defaultLimits } from "../server/serve.ts";
import { createGrpcUnaryCaller } from "./grpc-unary.ts";

/** How a service calls one upstream. */
export interface UpstreamOptions {
  /** The upstream's name in errors, logs and metrics ("users"). */
  name: string;
  /** Base URL of the upstream, or several separated by commas to balance calls over them. */
  baseUrl: string;
  /** Deadline of a call made outside any incoming call, or longer than what remains of it. */
  defaultTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  breaker?: Partial<BreakerPolicy>;
  /** This service's own bearer token for every call (its identity, not its caller's). */
  credentials?: () => Promise<string>;
  /**
   * Largest response message accepted, in bytes (larger: the call fails with resource_exhausted
   * before the rest is read); the server side's default limit when absent.
   */
  maxMessageBytes?: number;
}

/** When a failed call is tried again. */
export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  maxAttempts: number;
  /** Backoff before the first retry; it doubles each time, with full jitter. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /**
   * Retries spend one token each from a budget (modelled on Finagle's RetryBudget) that gains
   * this many tokens per second, so that a burst of failures can always be retried a little,
   */
  budgetPerSecond: number;
  /** and this many for every first attempt (0.2: retries add at most a fifth to the load), */
  budgetRatio: number;
  /** up to this many tokens in all; the budget starts full. */
  budgetMax: number;
}

/** When the breaker opens and for how long. */
export interface BreakerPolicy {
  /** Percentage of failed calls in the rolling window that opens the breaker. */
  errorThresholdPercentage: number;
  /** Fewest calls in the window before the percentage counts. */
  volumeThreshold: number;
  /** How long the breaker stays open before letting one probe through, in milliseconds. */
  openMs: number;
  /** Length of the rolling window, in milliseconds. */
  windowMs: number;
}

const defaultRetry: RetryPolicy = {
  maxAttempts: 3,
  initialBackoffMs: 20,
  maxBackoffMs: 500,
  budgetPerSecond: 10,
  budgetRatio: 0.2,
  budgetMax: 100,
};
const defaultBreaker: BreakerPolicy = {
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  openMs: 1_000,
  windowMs: 10_000,
};

const breakerGauge = new Gauge({
  name: "upstream_circuit_breaker_state",
  help: "State of the circuit breaker of each upstream: 0 closed, 1 half-open, 2 open.",
  labelNames: ["upstream"],
  registers: [processRegistry],
});
const retryCounter = new Counter({
  name: "upstream_retries_total",
  help: "Calls to an upstream tried again after a failure of the instance or the connection.",
  labelNames: ["upstream"],
  registers: [processRegistry],
});

/** The state of an upstream's circuit breaker. */
export type BreakerState = "closed" | "open" | "half-open";

/** A client of one upstream with its resilience machinery. */
export interface Upstream<T extends DescService> {
  client: Client<T>;
  /** The breaker's state right now. */
  breakerState(): BreakerState;
  /** Calls `listener` whenever the breaker changes state. */
  onBreakerChange(listener: (state: BreakerState) => void): void;
}

/**
 * Creates a typed gRPC client of `service` for one upstream, with the mesh's call policy:
 * - deadlines: an outbound call gets what remains of the incoming call's deadline (never a fresh,
 *   longer one) and is cancelled with it;
 * - retries with exponential backoff and full jitter, only for calls that are safe to repeat
 *   (methods marked NO_SIDE_EFFECTS or IDEMPOTENT, or requests carrying a `request_id`), only when
 *   the instance or connection failed, within the deadline and a budget that lets retries add at
 *   most a fifth to the load (beyond a small reserve), so that they cannot amplify an outage;
 * - a circuit breaker (opossum) that fails fast with `unavailable` while the upstream is down and
 *   lets one probe through per open period;
 * - round-robin over several addresses, skipping for a moment an address that refused a call.
 */
export function createUpstream<T extends DescService>(
  service: T,
  options: UpstreamOptions,
): Upstream<T> {
  recordCalls();
  const retry = { ...defaultRetry, ...options.retry };
  const breakerPolicy = { ...defaultBreaker, ...options.breaker };
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 2_000;
  const { credentials } = options;
  const maxMessageBytes = options.maxMessageBytes ?? defaultLimits.maxMessageBytes;
  const addresses = options.baseUrl
    .split(",")
    .map((url) => url.trim())
    .filter(Boolean)
    .map((baseUrl) => {
      // One HTTP/2 connection per address, shared by unary calls (the runtime's own gRPC client)
      // and streams (connect-node's transport).
      const sessionManager = new Http2SessionManager(baseUrl);
      return {
        baseUrl,
        unary: createGrpcUnaryCaller({ baseUrl, sessionManager, maxMessageBytes }),
        transport: createGrpcTransport({
          baseUrl,
          sessionManager,
          readMaxBytes: maxMessageBytes,
          interceptors: credentials ? [withCredentials(credentials)] : [],
        }),
        downUntil: 0,
      };
    });
  if (addresses.length === 0) throw new Error(`no address for upstream ${options.name}`);
  let turn = 0;
  const pick = () => {
    const now = Date.now();
    for (let i = 0; i < addresses.length; i++) {
      const address = addresses[(turn + i) % addresses.length];
      if (address && address.downUntil <= now) {
        turn = (turn + i + 1) % addresses.length;
        return address;
      }
    }
    turn = (turn + 1) % addresses.length;
    return addresses[turn] ?? (addresses[0] as (typeof addresses)[number]);
  };

  let tokens = retry.budgetMax;
  let refilledAt = Date.now();
  const deposit = (amount: number) => {
    const now = Date.now();
    tokens = Math.min(
      retry.budgetMax,
      tokens + amount + ((now - refilledAt) / 1000) * retry.budgetPerSecond,
    );
    refilledAt = now;
  };
  const breaker = new CircuitBreaker((attempt: () => Promise<unknown>) => attempt(), {
    timeout: false,
    errorThresholdPercentage: breakerPolicy.errorThresholdPercentage,
    volumeThreshold: breakerPolicy.volumeThreshold,
    resetTimeout: breakerPolicy.openMs,
    rollingCountTimeout: breakerPolicy.windowMs,
    // Only an upstream that is down or broken counts against it, not a client error it reported.
    errorFilter: (error: unknown) => !isUpstreamFault(error),
  });
  const stateOf = (): BreakerState =>
    breaker.opened ? "open" : breaker.halfOpen ? "half-open" : "closed";
  const listeners: ((state: BreakerState) => void)[] = [];
  const stateValue: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 };
  breakerGauge.set({ upstream: options.name }, 0);
  const notify = () => {
    breakerGauge.set({ upstream: options.name }, stateValue[stateOf()]);
    for (const listener of listeners) listener(stateOf());
  };
  breaker.on("open", notify);
  breaker.on("halfOpen", notify);
  breaker.on("close", notify);

  const budget = (timeoutMs: number | undefined, signal: AbortSignal | undefined) => {
    const call = currentCall();
    const now = Date.now();
    const deadline = Math.min(
      now + (timeoutMs ?? defaultTimeoutMs),
      call?.deadline ?? Number.POSITIVE_INFINITY,
    );
    const signals = [signal, call?.signal].filter((s): s is AbortSignal => s !== undefined);
    return { deadline, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] };
  };
  const remaining = (deadline: number) => {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new ConnectError(`no time left to call ${options.name}`, Code.DeadlineExceeded);
    }
    return left;
  };
  const throughBreaker = async <R>(attempt: () => Promise<R>): Promise<R> => {
    try {
      return (await breaker.fire(attempt)) as R;
    } catch (error) {
      if ((error as { code?: string }).code === "EOPENBREAKER") {
        throw new ConnectError(
          `${options.name} is unavailable (circuit open); retry later`,
          Code.Unavailable,
        );
      }
      throw error;
    }
  };

  const transport: Transport = {
    unary(method, signal, timeoutMs, header, input) {
      const { deadline, signal: callSignal } = budget(timeoutMs, signal);
      const repeatable =
        method.idempotency === Idempotency.NO_SIDE_EFFECTS ||
        method.idempotency === Idempotency.IDEMPOTENT ||
        hasRequestId(input);
      deposit(retry.budgetRatio);
      const started = performance.now();
      const span = startClientSpan(service.typeName, method.name, options.name, header, deadline);
      const call = throughBreaker(async () => {
        if (credentials) await signIn(span.header, credentials);
        for (let attempt = 1; ; attempt++) {
          const address = pick();
          try {
            return await address.unary(method, callSignal, remaining(deadline), span.header, input);
          } catch (error) {
            if (!isTransient(error, callSignal)) throw error;
            address.downUntil = Date.now() + 1_000;
            const backoff =
              Math.random() *
              Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** (attempt - 1));
            deposit(0);
            const mayRetry =
              repeatable &&
              attempt < retry.maxAttempts &&
              tokens >= 1 &&
              deadline - Date.now() > backoff &&
              !callSignal?.aborted;
            if (!mayRetry) throw error;
            tokens -= 1;
            retryCounter.inc({ upstream: options.name });
            await new Promise((resolve) => setTimeout(resolve, backoff));
          }
        }
      });
      call.then(
        () => {
          span.end();
          recordUpstreamCall(options.name, performance.now() - started, undefined);
        },
        (error: unknown) => {
          span.end(error);
          recordUpstreamCall(options.name, performance.now() - started, error);
        },
      );
      return call;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      // Streams are not retried: their messages may have been consumed already. The span covers
      // opening the stream; the stream itself can live for hours.
      const { deadline, signal: callSignal } = budget(timeoutMs, signal);
      const span = startClientSpan(service.typeName, method.name, options.name, header, deadline);
      const call = throughBreaker(() =>
        pick().transport.stream(
          method,
          callSignal,
          remaining(deadline),
          span.header,
          input,
          contextValues,
        ),
      );
      call.then(
        () => span.end(),
        (error: unknown) => span.end(error),
      );
      return call;
    },
  };

  return {
    client: createClient(service, transport),
    breakerState: stateOf,
    onBreakerChange: (listener) => listeners.push(listener),
  };
}

/** Creates a typed client of `service` for one upstream; see `createUpstream` for its policy. */
export function createUpstreamClient<T extends DescService>(
  service: T,
  options: UpstreamOptions,
): Client<T> {
  return createUpstream(service, options).client;
}

function withCredentials(credentials: () => Promise<string>): Interceptor {
  return (next) => async (req) => {
    await signIn(req.header, credentials);
    return next(req);
  };
}

/** Puts this service's own bearer token on an outbound call's headers. */
async function signIn(header: Headers, credentials: () => Promise<string>): Promise<void> {
  header.set("authorization", `Bearer ${await credentials()}`);
}

function hasRequestId(input: unknown): boolean {
  const requestId = (input as { requestId?: unknown } | undefined)?.requestId;
  return typeof requestId === "string" && requestId !== "";
}

/**
 * True when the call failed because the instance or the connection did: `unavailable`, or a
 * stream reset that this side did not ask for (a server going away cancels its streams).
 */
function isTransient(error: unknown, signal: AbortSignal | undefined): boolean {
  const code = ConnectError.from(error).code;
  if (code === Code.Unavailable) return true;
  if (signal?.aborted) return false;
  return (
    code === Code.Canceled ||
    networkCodes.has(String((error as { cause?: { code?: unknown } }).cause?.code))
  );
}

// Failures of the connection itself, which connect-node reports with various codes.
const networkCodes = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_INVALID_SESSION",
]);

function isUpstreamFault(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return (
    code === Code.Unavailable ||
    code === Code.DeadlineExceeded ||
    code === Code.Internal ||
    code === Code.Unknown
  );
}
