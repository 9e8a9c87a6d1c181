import type { OrderListing, OrderPage, OrderRepository } from "./order.ts";
import { type OrderScope, userWithin } from "./scope.ts";

/**
 * Returns one page of orders, newest first, optionally of one user and in one status, with how
 * many match; a customer's only, and only theirs counted.
 */
export async function listOrders(
  orders: OrderRepository,
  listing: OrderListing,
  scope: OrderScope = undefined,
): Promise<OrderPage> {
  return orders.list({ ...listing, userId: userWithin(scope, listing.userId) });
}
