import { OrderNotFoundError } from "./errors.ts";
import type { Order, OrderRepository } from "./order.ts";
import { isUuid } from "./validate.ts";

/** Returns the order with `id`, or throws OrderNotFoundError. */
export async function getOrder(orders: OrderRepository, id: string): Promise<Order> {
  const order = isUuid(id) ? await orders.get(id) : undefined;
  if (!order) throw new OrderNotFoundError(id);
  return order;
}
