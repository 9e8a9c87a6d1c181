import { ProductNotFoundError } from "./errors.ts";
import type { InventoryRepository, Product } from "./product.ts";

/** Returns the product with `sku`, or throws ProductNotFoundError. */
export async function getProduct(inventory: InventoryRepository, sku: string): Promise<Product> {
  const product = await inventory.get(sku);
  if (!product) throw new ProductNotFoundError(sku);
  return product;
}
