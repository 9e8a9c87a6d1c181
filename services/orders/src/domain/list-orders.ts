import type { OrderPage, OrderRepository } from "./order.ts";
import { isUuid } from "./validate.ts";

/** Returns one page of orders, newest first, optionally of one user. */
export async function listOrders(
  orders: OrderRepository,
  request: { userId: string | undefined; cursor: string | undefined; limit: number },
): Promise<OrderPage> {
  if (request.userId !== undefined && !isUuid(request.userId)) {
    // No order can belong to a malformed user id.
    return { orders: [], nextCursor: undefined, revision: (await orders.snapshotOf([])).revision };
  }
  return orders.list(request);
}
