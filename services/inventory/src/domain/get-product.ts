import { ProductNotFoundError } from "./errors.ts";
import type { InventoryRepository, Product } from "./product.ts";
import { isSku } from "./validate.ts";

/** Returns the product with `sku`, or throws ProductNotFoundError. */
export async function getProduct(inventory: InventoryRepository, sku: string): Promise<Product> {
  const product = isSku(sku) ? await inventory.get(sku) : undefined;
  if (!product) throw new ProductNotFoundError(sku);
  return product;
}
