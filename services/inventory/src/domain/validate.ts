import { describeViolations, fieldsFirst, type RuleViolation } from "@shop/mesh/rule-violation";
import { InvalidInventoryRequestError, ProductNotFoundError } from "./errors.ts";
import type { StockItem } from "./product.ts";

// Every rule of a request's fields lives in the contract (proto/shop/inventory/v1,
// shop.rules.v1) and reaches the domain through InventoryRules; what is left here is the domain's
// own part: what a broken rule means to it.

/**
 * Throws for a request that breaks the contract's rules: InvalidInventoryRequestError naming every
 * broken rule, or, when only skus are malformed, ProductNotFoundError for the first (no product
 * has a sku of another form). `skuOf` finds the sku a violation's path points at.
 */
export function refuseViolations(
  violations: readonly RuleViolation[],
  skuOf: (violation: RuleViolation) => string | undefined,
): void {
  const malformedSkus: string[] = [];
  const others: RuleViolation[] = [];
  for (const violation of violations) {
    const sku = skuOf(violation);
    if (sku === undefined) others.push(violation);
    else malformedSkus.push(sku);
  }
  if (others.length > 0) {
    throw new InvalidInventoryRequestError(describeViolations(fieldsFirst(others)));
  }
  const [sku] = malformedSkus;
  if (sku !== undefined) throw new ProductNotFoundError(sku);
}

/** The items sorted by sku, the order in which their rows are locked. */
export function sortedBySku(items: readonly StockItem[]): StockItem[] {
  return [...items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
}
