import type { Inventory, Reservation } from "./product.ts";
import { refuseViolations } from "./validate.ts";

/** Gives back what an order holds. Idempotent: releasing twice changes stock once. */
export async function releaseStock(
  inventory: Inventory,
  request: { orderId: string },
): Promise<Reservation | undefined> {
  refuseViolations(inventory.rules.release(request), () => undefined);
  return inventory.release(request.orderId);
}
