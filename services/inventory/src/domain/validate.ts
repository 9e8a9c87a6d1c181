import { InvalidInventoryRequestError } from "./errors.ts";
import type { StockItem } from "./product.ts";

const skuPattern = /^[A-Z0-9][A-Z0-9-]{0,63}$/;
const orderIdPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `sku` has the form of a sku; other skus cannot exist. */
export function isSku(sku: string): boolean {
  return skuPattern.test(sku);
}

/** Returns the order id, or throws for an empty or malformed one. */
export function validOrderId(orderId: string): string {
  if (!orderIdPattern.test(orderId)) {
    throw new InvalidInventoryRequestError("order_id must be 1 to 64 letters, digits, '-' or '_'");
  }
  return orderId;
}

/** Returns the items sorted by sku, or throws for an empty list, a bad quantity or a repeated sku. */
export function validItems(items: readonly StockItem[]): StockItem[] {
  if (items.length === 0) throw new InvalidInventoryRequestError("items must not be empty");
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    if (item.quantity < 1n) {
      throw new InvalidInventoryRequestError(`items[${index}].quantity must be at least 1`);
    }
    if (seen.has(item.sku)) {
      throw new InvalidInventoryRequestError(
        `items[${index}]: sku ${item.sku} appears more than once`,
      );
    }
    seen.add(item.sku);
  }
  return [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
}
