/** A field of a request is missing or malformed. */
export class InvalidInventoryRequestError extends Error {
  override name = "InvalidInventoryRequestError";
}

/** No product has this sku. */
export class ProductNotFoundError extends Error {
  override name = "ProductNotFoundError";
  readonly sku: string;
  constructor(sku: string) {
    super(`product ${sku} not found`);
    this.sku = sku;
  }
}

/** A product has fewer units than asked for; nothing was changed. */
export class InsufficientStockError extends Error {
  override name = "InsufficientStockError";
  readonly sku: string;
  constructor(sku: string, requested: bigint, available: bigint) {
    super(`product ${sku} has ${available} in stock, ${requested} requested; nothing was reserved`);
    this.sku = sku;
  }
}

/** The order already holds a reservation with other items. */
export class ReservationConflictError extends Error {
  override name = "ReservationConflictError";
}

/** The order's reservation was released: that order id cannot hold stock again. */
export class ReservationReleasedError extends Error {
  override name = "ReservationReleasedError";
}
