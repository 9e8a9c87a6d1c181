import { ProductNotFoundError } from "./errors.ts";
import type { InventoryRepository, Product, Reservation, StockItem } from "./product.ts";
import { isSku, validItems, validOrderId } from "./validate.ts";

/**
 * Holds stock for an order: every item or none. Idempotent per order id: the same reservation
 * again changes nothing and returns what was held.
 */
export async function reserveStock(
  inventory: InventoryRepository,
  request: { orderId: string; items: readonly StockItem[] },
): Promise<{ reservation: Reservation; products: Product[] }> {
  const orderId = validOrderId(request.orderId);
  const items = validItems(request.items);
  const unknown = items.find((item) => !isSku(item.sku));
  if (unknown) throw new ProductNotFoundError(unknown.sku);
  return inventory.reserve(orderId, items);
}
