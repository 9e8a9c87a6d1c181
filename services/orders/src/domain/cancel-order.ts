import { OrderNotCancellableError, OrderNotFoundError } from "./errors.ts";
import type { Order, OrderRepository, StockKeeper } from "./order.ts";
import { isVisible, type OrderScope } from "./scope.ts";

/**
 * Cancels a confirmed order. The stock is released first (idempotently), then the order is marked
 * cancelled: if the second step fails, the order stays confirmed and a retry completes it without
 * releasing twice.
 */
export async function cancelOrder(
  deps: { orders: OrderRepository; stock: StockKeeper },
  id: string,
  scope: OrderScope = undefined,
): Promise<Order> {
  const order = await deps.orders.get(id);
  if (!order || !isVisible(scope, order)) throw new OrderNotFoundError(id);
  if (order.status !== "confirmed") throw new OrderNotCancellableError(id, order.status);
  await deps.stock.release(id);
  return deps.orders.cancel(id);
}
