import { Code } from "@connectrpc/connect";
import { createDomainErrorMapper } from "@shop/mesh";
import {
  InvalidOrderError,
  OrderAccessDeniedError,
  OrderNotCancellableError,
  OrderNotFoundError,
  OrderRetryLaterError,
  RequestIdReusedError,
  StockUnavailableError,
  TooManyTrackedError,
  UpstreamUnavailableError,
  UserNotEligibleError,
} from "../domain/errors.ts";

/** Maps the orders domain's errors to Connect codes; anything else passes unchanged. */
export const toConnectError = createDomainErrorMapper((error) => {
  if (error instanceof InvalidOrderError) return Code.InvalidArgument;
  if (error instanceof RequestIdReusedError) return Code.InvalidArgument;
  if (error instanceof OrderNotFoundError) return Code.NotFound;
  if (error instanceof UserNotEligibleError) return Code.FailedPrecondition;
  if (error instanceof StockUnavailableError) return Code.FailedPrecondition;
  if (error instanceof OrderNotCancellableError) return Code.FailedPrecondition;
  if (error instanceof TooManyTrackedError) return Code.ResourceExhausted;
  if (error instanceof OrderAccessDeniedError) return Code.PermissionDenied;
  if (error instanceof OrderRetryLaterError) return Code.Aborted;
  if (error instanceof UpstreamUnavailableError) {
    return error.timedOut ? Code.DeadlineExceeded : Code.Unavailable;
  }
  return undefined;
});
