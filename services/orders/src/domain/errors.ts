/** A field of a request is missing or malformed. */
export class InvalidOrderError extends Error {
  override name = "InvalidOrderError";
}

/** No order has this id. */
export class OrderNotFoundError extends Error {
  override name = "OrderNotFoundError";
  constructor(id: string) {
    super(`order ${id} not found`);
  }
}

/** The user placing the order does not exist or may not order. */
export class UserNotEligibleError extends Error {
  override name = "UserNotEligibleError";
}

/** A product is unknown or short; nothing was reserved. */
export class StockUnavailableError extends Error {
  override name = "StockUnavailableError";
}

/** The request id was used before for a different order. */
export class RequestIdReusedError extends Error {
  override name = "RequestIdReusedError";
  constructor(requestId: string) {
    super(`request_id ${requestId} was already used for a different order; use a new request_id`);
  }
}

/** The order is not in a state that allows the change. */
export class OrderNotCancellableError extends Error {
  override name = "OrderNotCancellableError";
  constructor(id: string, status: string) {
    super(`order ${id} is ${status} and cannot be cancelled`);
  }
}

/** A service this one depends on did not answer in time or is down. */
export class UpstreamUnavailableError extends Error {
  override name = "UpstreamUnavailableError";
  readonly timedOut: boolean;
  constructor(message: string, options: { timedOut: boolean; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.timedOut = options.timedOut;
  }
}

/** The order is being rolled back, or was while this call ran: trying again will place it anew. */
export class OrderRetryLaterError extends Error {
  override name = "OrderRetryLaterError";
}

/** A stream asked to follow more orders than allowed. */
export class TooManyTrackedError extends Error {
  override name = "TooManyTrackedError";
}

/** A customer asked for, or on behalf of, another user's orders. */
export class OrderAccessDeniedError extends Error {
  override name = "OrderAccessDeniedError";
}
