import type { InventoryRepository, Reservation } from "./product.ts";
import { validOrderId } from "./validate.ts";

/** Gives back what an order holds. Idempotent: releasing twice changes stock once. */
export async function releaseStock(
  inventory: InventoryRepository,
  request: { orderId: string },
): Promise<Reservation | undefined> {
  return inventory.release(validOrderId(request.orderId));
}
