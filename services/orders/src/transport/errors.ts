import { Code, ConnectError } from "@connectrpc/connect";
import { InvalidStartRevisionError } from "@shop/mesh/watch";
import {
  InvalidOrderError,
  type OrderDomainError,
  OrderNotCancellableError,
  OrderNotFoundError,
  OrderRetryLaterError,
  RequestIdReusedError,
  StockUnavailableError,
  TooManyTrackedError,
  UpstreamUnavailableError,
  UserNotEligibleError,
} from "../domain/errors.ts";

/**
 * Maps the domain's errors to Connect codes; anything else is rethrown unchanged for the mesh's
 * error interceptor, which turns it into a generic `internal`.
 */
export function toConnectError(error: unknown): unknown {
  if (error instanceof InvalidStartRevisionError) {
    return new ConnectError(error.message, Code.InvalidArgument);
  }
  if (!isDomainError(error)) return error;
  return new ConnectError(error.message, codeOf(error), undefined, undefined, error);
}

function codeOf(error: OrderDomainError): Code {
  if (error instanceof InvalidOrderError) return Code.InvalidArgument;
  if (error instanceof RequestIdReusedError) return Code.InvalidArgument;
  if (error instanceof OrderNotFoundError) return Code.NotFound;
  if (error instanceof UserNotEligibleError) return Code.FailedPrecondition;
  if (error instanceof StockUnavailableError) return Code.FailedPrecondition;
  if (error instanceof OrderNotCancellableError) return Code.FailedPrecondition;
  if (error instanceof TooManyTrackedError) return Code.ResourceExhausted;
  if (error instanceof OrderRetryLaterError) return Code.Aborted;
  if (error instanceof UpstreamUnavailableError) {
    return error.timedOut ? Code.DeadlineExceeded : Code.Unavailable;
  }
  const unhandled: never = error;
  throw new Error(`unmapped domain error ${String(unhandled)}`);
}

function isDomainError(error: unknown): error is OrderDomainError {
  return (
    error instanceof InvalidOrderError ||
    error instanceof RequestIdReusedError ||
    error instanceof OrderNotFoundError ||
    error instanceof UserNotEligibleError ||
    error instanceof StockUnavailableError ||
    error instanceof OrderNotCancellableError ||
    error instanceof TooManyTrackedError ||
    error instanceof OrderRetryLaterError ||
    error instanceof UpstreamUnavailableError
  );
}
