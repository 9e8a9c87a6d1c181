import { Code, ConnectError } from "@connectrpc/connect";
import { InvalidStartRevisionError } from "@shop/mesh/watch";
import {
  InsufficientStockError,
  InvalidInventoryRequestError,
  type InventoryDomainError,
  ProductNotFoundError,
  ReservationConflictError,
  ReservationReleasedError,
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

function codeOf(error: InventoryDomainError): Code {
  if (error instanceof InvalidInventoryRequestError) return Code.InvalidArgument;
  if (error instanceof ProductNotFoundError) return Code.NotFound;
  if (error instanceof InsufficientStockError) return Code.FailedPrecondition;
  if (error instanceof ReservationConflictError) return Code.FailedPrecondition;
  if (error instanceof ReservationReleasedError) return Code.Aborted;
  const unhandled: never = error;
  throw new Error(`unmapped domain error ${String(unhandled)}`);
}

function isDomainError(error: unknown): error is InventoryDomainError {
  return (
    error instanceof InvalidInventoryRequestError ||
    error instanceof ProductNotFoundError ||
    error instanceof InsufficientStockError ||
    error instanceof ReservationConflictError ||
    error instanceof ReservationReleasedError
  );
}
