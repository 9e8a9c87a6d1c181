import type { Inventory, Product } from "./product.ts";
import { refuseViolations } from "./validate.ts";

/** Adds to (or takes from) a product's stock; stock never goes below zero. */
export async function adjustStock(
  inventory: Inventory,
  request: { sku: string; delta: bigint },
): Promise<Product> {
  refuseViolations(inventory.rules.adjustment(request), ({ path }) =>
    path[0] === "sku" ? request.sku : undefined,
  );
  return inventory.adjust(request.sku, request.delta);
}
