import type { OrderPage, OrderRepository } from "./order.ts";
import { type OrderScope, userWithin } from "./scope.ts";
import { isUuid } from "./validate.ts";

/** Returns one page of orders, newest first, optionally of one user; a customer's only. */
export async function listOrders(
  orders: OrderRepository,
  query: { userId: string | undefined; cursor: string | undefined; limit: number },
  scope: OrderScope = undefined,
): Promise<OrderPage> {
  const request = { ...query, userId: userWithin(scope, query.userId) };
  if (request.userId !== undefined && !isUuid(request.userId)) {
    // No order can belong to a malformed user id.
    return { orders: [], nextCursor: undefined, revision: (await orders.snapshotOf([])).revision };
  }
  return orders.list(request);
}
