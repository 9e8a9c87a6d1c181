import type { OrderPage, OrderRepository } from "./order.ts";
import { type OrderScope, userWithin } from "./scope.ts";

/** Returns one page of orders, newest first, optionally of one user; a customer's only. */
export async function listOrders(
  orders: OrderRepository,
  query: { userId: string | undefined; cursor: string | undefined; limit: number },
  scope: OrderScope = undefined,
): Promise<OrderPage> {
  return orders.list({ ...query, userId: userWithin(scope, query.userId) });
}
