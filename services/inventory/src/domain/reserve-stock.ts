import type { Inventory, Product, Reservation, StockItem } from "./product.ts";
import { refuseViolations, sortedBySku } from "./validate.ts";

/**
 * Holds stock for an order: every item or none. Idempotent per order id: the same reservation
 * again changes nothing and returns what was held.
 */
export async function reserveStock(
  inventory: Inventory,
  request: { orderId: string; items: readonly StockItem[] },
): Promise<{ reservation: Reservation; products: Product[] }> {
  refuseViolations(inventory.rules.reservation(request), ({ path }) =>
    path[0] === "items" && path[2] === "sku" ? request.items[Number(path[1])]?.sku : undefined,
  );
  return inventory.reserve(request.orderId, sortedBySku(request.items));
}
