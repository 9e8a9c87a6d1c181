import { createHash, randomUUID } from "node:crypto";
import { describeViolations, fieldsFirst } from "@shop/mesh/rule-violation";
import {
  InvalidOrderError,
  OrderAccessDeniedError,
  OrderRetryLaterError,
  RequestIdReusedError,
  StockUnavailableError,
  UserNotEligibleError,
} from "./errors.ts";
import type {
  NewOrderRequest,
  Order,
  Orders,
  RecordedRequest,
  RequestedItem,
  StockKeeper,
  UserDirectory,
} from "./order.ts";
import type { OrderScope } from "./scope.ts";
import { sortedBySku } from "./validate.ts";

/** The collaborators of CreateOrder. */
export interface CreateOrderDeps {
  orders: Orders;
  users: UserDirectory;
  stock: StockKeeper;
}

/**
 * Places an order as a saga over two databases: (1) record it as pending, (2) reserve its stock in
 * the inventory (idempotent, keyed by the order id), (3) confirm it. A failure at (2) that is
 * definite (a product short) forgets the pending order; any other failure, or a crash, leaves it
 * pending, and either a retry with the same request id finishes the saga or the sweeper
 * (`compensateStaleOrders`) releases the stock and forgets the order. Only step (3) acknowledges.
 *
 * With a request id (AIP-155), a repeat gets the first call's order; a repeat that arrives while
 * the first call is still running joins it (every step is idempotent), so there is never a second
 * order; the same id with different content is invalid_argument.
 */
export async function createOrder(
  deps: CreateOrderDeps,
  request: NewOrderRequest,
  scope: OrderScope = undefined,
): Promise<Order> {
  if (scope !== undefined && request.userId !== scope) {
    throw new OrderAccessDeniedError("a customer places orders for themselves only");
  }
  const violations = deps.orders.rules.newOrder(request);
  // No user has an id of another form.
  if (violations.some((violation) => violation.path[0] === "user_id")) {
    throw new UserNotEligibleError(`user ${request.userId} does not exist`);
  }
  if (violations.length > 0)
    throw new InvalidOrderError(describeViolations(fieldsFirst(violations)));
  const items = sortedBySku(request.items);
  const fingerprint = fingerprintOf(request.userId, items);

  let recorded: RecordedRequest | undefined;
  if (request.requestId !== "") {
    recorded = await deps.orders.findByRequestId(request.requestId);
    if (recorded) {
      const done = settled(recorded, fingerprint, request.requestId);
      if (done) return done;
    }
  }

  if (!recorded) {
    const status = await deps.users.statusOf(request.userId);
    if (status === undefined) {
      throw new UserNotEligibleError(`user ${request.userId} does not exist`);
    }
    if (status !== "active") {
      throw new UserNotEligibleError(`user ${request.userId} is ${status} and cannot place orders`);
    }
    const begun = await deps.orders.begin({
      id: randomUUID(),
      userId: request.userId,
      items,
      requestId: request.requestId,
      requestFingerprint: fingerprint,
    });
    recorded = begun.recorded;
    if (!begun.created) {
      // A concurrent repeat recorded it first: join that saga.
      const done = settled(recorded, fingerprint, request.requestId);
      if (done) return done;
    }
  }

  const id = recorded.id;
  let prices: Map<string, bigint>;
  try {
    prices = await deps.stock.reserve(id, items);
  } catch (error) {
    if (error instanceof StockUnavailableError) {
      // Nothing was reserved (reservations are all or nothing): the order never happened.
      await deps.orders.abandon(id);
    }
    throw error;
  }
  const confirmed = await deps.orders.confirm(
    id,
    items.map((item) => ({ ...item, unitPriceCents: prices.get(item.sku) ?? 0n })),
  );
  if (!confirmed) {
    throw new OrderRetryLaterError(
      "the order was rolled back while it was being placed; send the request again",
    );
  }
  return confirmed;
}

/** The answer for a request id already recorded, or undefined when its saga must go on. */
function settled(
  recorded: RecordedRequest,
  fingerprint: string,
  requestId: string,
): Order | undefined {
  if (recorded.requestFingerprint !== fingerprint) throw new RequestIdReusedError(requestId);
  if (recorded.state === "compensating") {
    throw new OrderRetryLaterError(
      "an earlier attempt with this request_id is being rolled back; send the request again shortly",
    );
  }
  return recorded.order;
}

/** A digest of what was asked for, to tell a true repeat from a reused request id. */
function fingerprintOf(userId: string, items: readonly RequestedItem[]): string {
  const canonical = JSON.stringify([
    userId,
    items.map((item) => [item.sku, String(item.quantity)]),
  ]);
  return createHash("sha256").update(canonical).digest("hex");
}
