import type { RequestedItem } from "./order.ts";

// Every rule of a request's fields lives in the contract (proto/shop/order/v1, shop.rules.v1) and
// reaches the domain through OrderRules; what is left here is the domain's own part.

/** The items sorted by sku: the order in which stock is reserved and an order is fingerprinted. */
export function sortedBySku(items: readonly RequestedItem[]): RequestedItem[] {
  return [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
}
