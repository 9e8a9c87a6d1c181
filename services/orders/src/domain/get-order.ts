import { OrderNotFoundError } from "./errors.ts";
import type { Order, OrderRepository } from "./order.ts";
import { isVisible, type OrderScope } from "./scope.ts";

/**
 * Returns the order with `id`, or throws OrderNotFoundError; also when the order is outside the
 * caller's scope, so that a customer cannot tell another's order from a missing one.
 */
export async function getOrder(
  orders: OrderRepository,
  id: string,
  scope: OrderScope = undefined,
): Promise<Order> {
  const order = await orders.get(id);
  if (!order || !isVisible(scope, order)) throw new OrderNotFoundError(id);
  return order;
}
