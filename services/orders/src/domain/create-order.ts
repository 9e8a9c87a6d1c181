import { createHash, randomUUID } from "node:crypto";
import { InvalidOrderError, RequestIdReusedError, UserNotEligibleError } from "./errors.ts";
import type { Order, OrderRepository, RequestedItem, StockKeeper, UserDirectory } from "./order.ts";
import { isUuid, validItems } from "./validate.ts";

/** The collaborators of CreateOrder. */
export interface CreateOrderDeps {
  orders: OrderRepository;
  users: UserDirectory;
  stock: StockKeeper;
}

/**
 * Places an order: checks the user, reserves the stock (idempotently, keyed by the order id), then
 * stores the order. With a request id (AIP-155) a repeat returns the first order: the order id is
 * derived from the request id, so even a repeat racing the first call reserves once and stores once.
 */
export async function createOrder(
  deps: CreateOrderDeps,
  request: { userId: string; items: readonly RequestedItem[]; requestId: string },
): Promise<Order> {
  if (!isUuid(request.userId)) {
    throw new UserNotEligibleError(`user ${request.userId} does not exist`);
  }
  if (request.requestId !== "" && !isUuid(request.requestId)) {
    throw new InvalidOrderError("request_id must be a UUID (or empty)");
  }
  const items = validItems(request.items);
  const fingerprint = fingerprintOf(request.userId, items);

  if (request.requestId !== "") {
    const earlier = await deps.orders.findByRequestId(request.requestId);
    if (earlier) return sameRequestOrThrow(earlier, fingerprint, request.requestId);
  }

  const status = await deps.users.statusOf(request.userId);
  if (status === undefined) throw new UserNotEligibleError(`user ${request.userId} does not exist`);
  if (status !== "active") {
    throw new UserNotEligibleError(`user ${request.userId} is ${status} and cannot place orders`);
  }

  const id = request.requestId === "" ? randomUUID() : orderIdFor(request.requestId);
  const prices = await deps.stock.reserve(id, items);
  const priced = items.map((item) => ({ ...item, unitPriceCents: prices.get(item.sku) ?? 0n }));
  let stored: { order: Order; requestFingerprint: string };
  try {
    stored = await deps.orders.insert({
      id,
      userId: request.userId,
      items: priced,
      totalCents: priced.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0n),
      requestId: request.requestId,
      requestFingerprint: fingerprint,
    });
  } catch (error) {
    // The order was not stored: give the stock back (idempotent, so a failure here is retried by
    // the next attempt with the same request id).
    await deps.stock.release(id).catch(() => {});
    throw error;
  }
  // Outside the try: when a racing call with this request id but other content stored its order
  // first, the reservation is that order's and must stay held.
  return sameRequestOrThrow(stored, fingerprint, request.requestId);
}

function sameRequestOrThrow(
  stored: { order: Order; requestFingerprint: string },
  fingerprint: string,
  requestId: string,
): Order {
  if (stored.requestFingerprint !== fingerprint) throw new RequestIdReusedError(requestId);
  return stored.order;
}

/** A digest of what was asked for, to tell a true repeat from a reused request id. */
function fingerprintOf(userId: string, items: readonly RequestedItem[]): string {
  const canonical = JSON.stringify([
    userId,
    items.map((item) => [item.sku, String(item.quantity)]),
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}

/** A UUID (version 5 layout) derived from the request id, so that repeats map to one order. */
export function orderIdFor(requestId: string): string {
  const hash = createHash("sha1").update(`shop.order.v1:${requestId.toLowerCase()}`).digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
