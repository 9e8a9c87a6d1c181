import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type Context,
  context,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { convertOnce } from "../change-feed/convert-once.ts";
import { timeoutOf } from "../interceptors/call-context.ts";
import { type AnyRequest, type Next, observeStream } from "../protocol/streams.ts";
import { codeName } from "./metrics.ts";

const tracer = trace.getTracer("@shop/mesh");

const headerGetter = {
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
  keys: (carrier: Headers) => [...carrier.keys()],
};
const headerSetter = {
  set: (carrier: Headers, key: string, value: string) => carrier.set(key, value),
};

type RpcSystem = "grpc" | "connect_rpc";

/** The OpenTelemetry `rpc.system` of a request, from its content type. */
function rpcSystemOf(contentType: string | null): RpcSystem {
  return contentType?.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

// The codes that mean the server failed, which the RPC conventions mark as span errors.
const serverFaults = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unimplemented,
  Code.Internal,
  Code.Unavailable,
  Code.DataLoss,
]);

/** Ends `span` with the outcome of the call, in the attributes of the RPC conventions. */
function endSpan(span: Span, system: string, error?: unknown): void {
  if (error === undefined) {
    if (system === "grpc") span.setAttribute("rpc.grpc.status_code", 0);
  } else {
    const connectError = ConnectError.from(error);
    if (system === "grpc") span.setAttribute("rpc.grpc.status_code", connectError.code);
    else span.setAttribute("rpc.connect_rpc.error_code", codeName(connectError.code));
    if (serverFaults.has(connectError.code)) {
      span.recordException(connectError);
      span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
    }
  }
  span.end();
}

// The name and options of each method's server spans, per RPC system, made once.
const serverSpansOf = convertOnce((method: DescMethod) => {
  const name = `${method.parent.typeName}/${method.name}`;
  const spanOf = (system: RpcSystem) => ({
    name,
    options: {
      kind: SpanKind.SERVER,
      attributes: Object.freeze({
        "rpc.system": system,
        "rpc.service": method.parent.typeName,
        "rpc.method": method.name,
      }),
    } satisfies SpanOptions,
  });
  return { grpc: spanOf("grpc"), connect_rpc: spanOf("connect_rpc") };
});

/**
 * Starts a SERVER span for every RPC a server handles, continuing the caller's trace from the W3C
 * `traceparent` header (sent the same way over gRPC, gRPC-web and Connect), with the attributes of
 * the OpenTelemetry RPC conventions. Without a configured SDK the API is a no-op.
 */
export function createServerTracingInterceptor(): Interceptor {
  const traced = async (
    next: Next,
    req: AnyRequest,
    span: Span,
    parent: Context,
    system: string,
  ) => {
    const ctx = trace.setSpan(parent, span);
    try {
      const res = await context.with(ctx, () => next(req));
      if (!res.stream) {
        endSpan(span, system);
        return res;
      }
      return {
        ...res,
        // Each `next()` runs inside the span's context, so that a streaming handler's work is
        // traced too.
        message: observeStream(res.message, {
          pull: (next) => context.with(ctx, next),
          onEnd: ({ error }) => endSpan(span, system, error),
        }),
      };
    } catch (error) {
      endSpan(span, system, error);
      throw error;
    }
  };
  return (next) => (req) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    // No trace to continue and no SDK to record: the call runs as it is, without a span.
    if (parent === ROOT_CONTEXT && !tracerRegistered()) return next(req);
    const system = rpcSystemOf(req.header.get("content-type"));
    const { name, options } = serverSpansOf(req.method)[system];
    const span = tracer.startSpan(name, options, parent);
    if (
      parent === ROOT_CONTEXT &&
      !span.isRecording() &&
      !trace.isSpanContextValid(span.spanContext())
    ) {
      // Nothing to record and no trace to continue (no SDK, say): the call runs as it is.
      return next(req);
    }
    if (span.isRecording()) {
      const timeoutMs = timeoutOf(req.header);
      if (timeoutMs !== undefined) setDeadline(span, Date.now() + timeoutMs);
    }
    return traced(next, req, span, parent, system);
  };
}

/**
 * Records on an RPC span the deadline its call was given and how much of it was left when the span
 * started, so that a trace's waterfall shows where a deadline was spent: `rpc.deadline` (ISO 8601)
 * and `rpc.deadline.remaining_ms`.
 */
function setDeadline(span: Span, deadline: number): void {
  span.setAttribute("rpc.deadline", new Date(deadline).toISOString());
  span.setAttribute("rpc.deadline.remaining_ms", Math.max(0, deadline - Date.now()));
}

/**
 * Whether a tracer provider (an SDK) is registered. Until one is, the API's global provider is its
 * proxy, which has no tracer to delegate to; asking is cheaper than starting a span that would not
 * record (about 3 % of the CPU of a unary call, bench/README.md).
 */
function tracerRegistered(): boolean {
  const provider = trace.getTracerProvider();
  return (
    !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer("@shop/mesh") !== undefined
  );
}

/**
 * Starts a CLIENT span for an outbound call and returns the headers that carry its context to the
 * upstream, with a function that ends the span with the call's outcome.
 */
export function startClientSpan(
  service: string,
  method: string,
  serverAddress: string,
  header: ConstructorParameters<typeof Headers>[0],
  /** The call's deadline (Date.now() scale), recorded on the span. */
  deadline?: number,
): { header: Headers; context: Context; end: (error?: unknown) => void } {
  const span = tracer.startSpan(`${service}/${method}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      "rpc.system": "grpc",
      "rpc.service": service,
      "rpc.method": method,
      "server.address": serverAddress,
    },
  });
  if (deadline !== undefined && span.isRecording()) setDeadline(span, deadline);
  const ctx = trace.setSpan(context.active(), span);
  const headers = new Headers(header);
  propagation.inject(ctx, headers, headerSetter);
  return { header: headers, context: ctx, end: (error) => endSpan(span, "grpc", error) };
}

// The repository methods that are not one database operation: the change streams (functions that
// return a stream, not generators) and the snapshot page.
const untracedMethods = new Set(["changes", "changesThrough", "snapshotPage"]);

/**
 * Wraps every method of a repository in a CLIENT span with the database conventions' attributes,
 * so that each trace shows the store's work under the RPC that caused it. Written here because
 * postgres.js has no OpenTelemetry instrumentation; a span per repository call (one transaction or
 * query) is the unit a reader of the trace cares about.
 */
export function traceRepository<T extends object>(repository: T, namespace: string): T {
  return new Proxy(repository, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || typeof property !== "string") return value;
      // Change streams live as long as a watch; they are not one database operation. Nor is a
      // snapshot page, which watchers asking together share: the change feed traces the one read
      // behind it (ChangeFeed.readPage), not each of the watchers' asks.
      if (value.constructor?.name === "AsyncGeneratorFunction" || untracedMethods.has(property)) {
        return value.bind(target);
      }
      return (...args: unknown[]) =>
        traceDatabaseCall(namespace, property, () =>
          (value as (...a: unknown[]) => unknown).apply(target, args),
        );
    },
  });
}

/** Runs `call`, one database operation, in a CLIENT span with the database conventions' attributes. */
export function traceDatabaseCall<R>(
  namespace: string,
  operation: string,
  call: () => R | Promise<R>,
): Promise<R> {
  return tracer.startActiveSpan(
    `db ${namespace}.${operation}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system.name": "postgresql",
        "db.namespace": namespace,
        "db.operation.name": operation,
      },
    },
    async (span) => {
      try {
        return await call();
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The ids of the active span, for log lines; empty outside a trace. */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** Starts the OpenTelemetry SDK (exporting by the standard OTEL_* variables) when `enabled`. */
export async function startTelemetry(options: {
  serviceName: string;
  enabled: boolean;
}): Promise<{ shutdown(): Promise<void> }> {
  if (!options.enabled) return { shutdown: async () => {} };
  // Loaded only when used: the SDK is large, and services without telemetry start faster.
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({ serviceName: options.serviceName, instrumentations: [] });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
