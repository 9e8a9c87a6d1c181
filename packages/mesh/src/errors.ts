import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { InvalidStartRevisionError } from "./watch.ts";

/**
 * Turns anything a handler throws that is not already a ConnectError into `internal` with a generic
 * message, keeping the original as `cause` for the log only; logs every failed call once. Client
 * mistakes are logged at debug level, server faults at error level.
 */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.service.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: guardStream(res.message, rpc, logger) };
    } catch (error) {
      throw toPublicError(error, rpc, logger);
    }
  };
}

async function* guardStream<T>(messages: AsyncIterable<T>, rpc: string, logger: Logger) {
  try {
    yield* messages;
  } catch (error) {
    throw toPublicError(error, rpc, logger);
  }
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
  if (
    error instanceof ConnectError &&
    error.code !== Code.Internal &&
    error.code !== Code.Unknown
  ) {
    const level = clientFaults.has(error.code) ? "debug" : "warn";
    logger[level]({ rpc, code: Code[error.code], err: error.cause ?? error }, error.rawMessage);
    return error;
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
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") {
      if (unavailableCodes.has(code) || /^(08|53|57P)/.test(code)) return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
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
  for (const [name, method] of Object.entries(implementation)) {
    if (typeof method !== "function") continue;
    wrapped[name] = (...args: unknown[]) => {
      let result: unknown;
      try {
        result = method.apply(implementation, args);
      } catch (error) {
        throw map(error);
      }
      if (isAsyncIterable(result)) return mapStream(result, map);
      return Promise.resolve(result).catch((error: unknown) => {
        throw map(error);
      });
    };
  }
  return wrapped as T;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === "function";
}

async function* mapStream<T>(messages: AsyncIterable<T>, map: (error: unknown) => unknown) {
  try {
    yield* messages;
  } catch (error) {
    throw map(error);
  }
}
