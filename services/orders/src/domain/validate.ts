import { InvalidOrderError } from "./errors.ts";
import type { RequestedItem } from "./order.ts";

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const maxItems = 100;

/** True when `id` has the form of a UUID. */
export function isUuid(id: string): boolean {
  return uuidPattern.test(id);
}

/** Returns the items sorted by sku, or throws for no items, a bad quantity or a repeated sku. */
export function validItems(items: readonly RequestedItem[]): RequestedItem[] {
  if (items.length === 0) throw new InvalidOrderError("an order needs at least one item");
  if (items.length > maxItems)
    throw new InvalidOrderError(`an order has at most ${maxItems} items`);
  const seen = new Set<string>();
  for (const [index, item] of items.entries()) {
    if (item.sku.trim() === "")
      throw new InvalidOrderError(`items[${index}].sku must not be empty`);
    if (item.quantity < 1n || item.quantity > 10_000n) {
      throw new InvalidOrderError(`items[${index}].quantity must be between 1 and 10000`);
    }
    if (seen.has(item.sku)) {
      throw new InvalidOrderError(`items[${index}]: sku ${item.sku} appears more than once`);
    }
    seen.add(item.sku);
  }
  return [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
}
