import { InvalidInventoryRequestError, ProductNotFoundError } from "./errors.ts";
import type { InventoryRepository, Product } from "./product.ts";
import { isSku } from "./validate.ts";

/** Adds to (or takes from) a product's stock; stock never goes below zero. */
export async function adjustStock(
  inventory: InventoryRepository,
  request: { sku: string; delta: bigint },
): Promise<Product> {
  if (request.delta === 0n) throw new InvalidInventoryRequestError("delta must not be 0");
  if (!isSku(request.sku)) throw new ProductNotFoundError(request.sku);
  return inventory.adjust(request.sku, request.delta);
}
