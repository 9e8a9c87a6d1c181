import type { InventoryRepository, ProductPage } from "./product.ts";

/** Returns one page of products ordered by sku and the revision it reflects. */
export function listProducts(
  inventory: InventoryRepository,
  request: { cursor: string | undefined; limit: number },
): Promise<ProductPage> {
  return inventory.list(request);
}
