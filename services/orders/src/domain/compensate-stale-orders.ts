import type { OrderRepository, StockKeeper } from "./order.ts";

/** How long a pending order may wait for its saga before it is rolled back, and more. */
export interface SweepPolicy {
  pendingTimeoutMs: number;
  batchSize: number;
}

/**
 * Rolls back orders whose saga stopped half way (the process died, or the inventory was down and
 * no client retried): releases their stock, then forgets them. Safe to run on every replica at
 * once and again after a crash: claiming skips rows another sweeper holds, and releasing is
 * idempotent. Returns the ids it rolled back; ids it could not (inventory down) stay claimed and
 * are tried again by the next sweep.
 */
export async function compensateStaleOrders(
  deps: { orders: OrderRepository; stock: StockKeeper },
  policy: SweepPolicy,
): Promise<{ compensated: string[]; failed: string[] }> {
  const ids = await deps.orders.claimStale(policy.pendingTimeoutMs, policy.batchSize);
  const compensated: string[] = [];
  const failed: string[] = [];
  for (const id of ids) {
    try {
      await deps.stock.release(id);
      await deps.orders.removeCompensated(id);
      compensated.push(id);
    } catch {
      failed.push(id);
    }
  }
  return { compensated, failed };
}
