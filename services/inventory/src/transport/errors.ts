import { Code } from "@connectrpc/connect";
import { createDomainErrorMapper } from "@shop/mesh";
import {
  InsufficientStockError,
  InvalidInventoryRequestError,
  ProductNotFoundError,
  ReservationConflictError,
  ReservationReleasedError,
} from "../domain/errors.ts";

/** Maps the inventory domain's errors to Connect codes; anything else passes unchanged. */
export const toConnectError = createDomainErrorMapper((error) => {
  if (error instanceof InvalidInventoryRequestError) return Code.InvalidArgument;
  if (error instanceof ProductNotFoundError) return Code.NotFound;
  if (error instanceof InsufficientStockError) return Code.FailedPrecondition;
  if (error instanceof ReservationConflictError) return Code.FailedPrecondition;
  if (error instanceof ReservationReleasedError) return Code.Aborted;
  return undefined;
});
