import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { InvalidStartRevisionError } from "../change-feed/watch.ts";
import {
  type AnyRequest,
  answersWithStream,
  callNext,
  type Next,
  observeStream,
} from "../protocol/streams.ts";

/**
 * Turns anything a handler throws that is not a ConnectError into `internal` with a generic
 * message, keeping the original as `cause` for the log only; logs every failed call once. Client
 * mistakes are logged at debug level, server faults at error level. What fails because the client
 * went away (a write to its closed stream) is `canceled`.
 */
export function createErrorInterceptor(logger: Logger): Interceptor {
  const publicError = (error: unknown, req: AnyRequest) =>
    toPublicError(
      ifClientGone(error, req.signal),
      `${req.service.typeName}/${req.method.name}`,
      logger,
    );
  const withStreams = async (next: Next, req: AnyRequest) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return {
        ...res,
        message: observeStream(res.message, new PublicErrors(req, publicError)),
      };
    } catch (error) {
      throw publicError(error, req);
    }
  };
  return (next) => (req) => {
    if (answersWithStream(req.method)) return withStreams(next, req);
    // A call answered with one message has only its error to map: one reaction, without an async
    // function's frame.
    return callNext(next, req).catch((error: unknown) => {
      throw publicError(error, req);
    });
  };
}

/**
 * What a stream fails with, as its client may see it. A class: a watch holds it for as long as it
 * is open, where a closure would hold its context too.
 */
class PublicErrors {
  private readonly req: AnyRequest;
  private readonly publicError: (error: unknown, req: AnyRequest) => unknown;

  constructor(req: AnyRequest, publicError: (error: unknown, req: AnyRequest) => unknown) {
    this.req = req;
    this.publicError = publicError;
  }

  mapError(error: unknown): unknown {
    return this.publicError(error, this.req);
  }
}

// An error that is not a ConnectError, once the call's signal has aborted (the client closed or
// reset its stream, or its deadline passed), comes from that: the call ends with the reason.
function ifClientGone(error: unknown, signal: AbortSignal): unknown {
  if (error instanceof ConnectError || !signal.aborted) return error;
  const reason = signal.reason instanceof ConnectError ? signal.reason : undefined;
  return new ConnectError(
    reason?.rawMessage ?? "the client went away",
    reason?.code ?? Code.Canceled,
    undefined,
    undefined,
    error,
  );
}

const clientFaults = new Set([
  Code.Canceled,
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.FailedPrecondition,
  Code.Aborted,
  Code.OutOfRange,
  Code.Unauthenticated,
  Code.ResourceExhausted,
  Code.DeadlineExceeded,
]);

/** Returns the error a client may see for `error`, logging it with its full detail. */
export function toPublicError(error: unknown, rpc: string, logger: Logger): ConnectError {
  // A ConnectError is an answer someone chose (a handler, the runtime, a mapped domain error), its
  // message written for the client, whatever its code: it goes out as it is, details included.
  // Only what was thrown without a code is hidden behind a generic message.
  if (error instanceof ConnectError) {
    const level = clientFaults.has(error.code)
      ? "debug"
      : error.code === Code.Internal || error.code === Code.Unknown
        ? "error"
        : "warn";
    logger[level]({ rpc, code: Code[error.code], err: error.cause ?? error }, error.rawMessage);
    return error;
  }
  if (isInvalidData(error)) {
    // A value the database refuses (a NUL character in text, a number out of range) came from the
    // request; the service's validation should have caught it, so it is logged as a warning.
    logger.warn({ rpc, err: error }, "the database refused a value of the request");
    return new ConnectError(
      "the request contains a value the database cannot accept",
      Code.InvalidArgument,
      undefined,
      undefined,
      error,
    );
  }
  if (isDatabaseUnavailable(error)) {
    logger.error({ rpc, err: error }, "database unavailable");
    return new ConnectError(
      "the database is unavailable; retry later",
      Code.Unavailable,
      undefined,
      undefined,
      error,
    );
  }
  logger.error({ rpc, err: error }, "unexpected error in handler");
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}

// Socket errors, postgres.js connection errors, and PostgreSQL's connection-exception (08),
// insufficient-resources (53) and operator-intervention (57P) classes.
const unavailableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/** True when `error`, or an error in its cause chain, says the database cannot be reached. */
export function isDatabaseUnavailable(error: unknown): boolean {
  return errorCodes(error).some((code) => unavailableCodes.has(code) || /^(08|53|57P)/.test(code));
}

// PostgreSQL's data exceptions (class 22) that a value sent by a client causes: string too long,
// number out of range, bad datetime, invalid text for a type, a character the encoding lacks (NUL).
const invalidDataCodes = new Set([
  "22001",
  "22003",
  "22007",
  "22008",
  "22021",
  "22026",
  "22P02",
  "22P05",
]);

/** True when `error`, or an error in its cause chain, is PostgreSQL refusing a value as invalid. */
function isInvalidData(error: unknown): boolean {
  return errorCodes(error).some((code) => invalidDataCodes.has(code));
}

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/**
 * Makes the transport's error mapping of one service from `codeOf`, which names the Connect code of
 * each of the service's own domain errors (undefined for anything else). The runtime's own errors
 * (an invalid watch start) are mapped here; anything unknown is returned unchanged for the error
 * interceptor, which turns it into a generic `internal`.
 */
export function createDomainErrorMapper(
  codeOf: (error: unknown) => Code | undefined,
): (error: unknown) => unknown {
  return (error) => {
    const code = error instanceof InvalidStartRevisionError ? Code.InvalidArgument : codeOf(error);
    if (code === undefined || !(error instanceof Error)) return error;
    return new ConnectError(error.message, code, undefined, undefined, error);
  };
}

/**
 * Wraps every method of a service implementation so that what it throws, or what its stream
 * throws, goes through `map` (a service's createDomainErrorMapper), instead of a try/catch in each
 * handler. (Interceptors given to `router.service` would replace the router's own, so this wraps
 * the implementation instead.)
 */
export function mapDomainErrors<T extends object>(
  implementation: T,
  map: (error: unknown) => unknown,
): T {
  const wrapped: Record<string, unknown> = {};
  // One function for every call's rejection, not a closure per call.
  const mapRejection = (error: unknown) => {
    throw map(error);
  };
  for (const [name, method] of Object.entries(implementation)) {
    if (typeof method !== "function") continue;
    // Every method of a service implementation takes its request (or requests) and a context.
    wrapped[name] = (input: unknown, context: unknown) => {
      let result: unknown;
      try {
        result = method.call(implementation, input, context);
      } catch (error) {
        throw map(error);
      }
      // A stream's error is mapped as it passes, without a generator of its own per message.
      if (isAsyncIterable(result)) return observeStream(result, { mapError: map });
      return Promise.resolve(result).then(undefined, mapRejection);
    };
  }
  return wrapped as T;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === "function";
}
