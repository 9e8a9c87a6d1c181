import { type EventBatch, snapshotThenChanges } from "@shop/mesh/watch";
import type { OrderEvent, OrderRepository } from "./order.ts";

/** Streams order changes (of one user, when given) after `startRevision`; with 0, the current state first. */
export function watchOrders(
  orders: OrderRepository,
  request: { startRevision: bigint; userId: string | undefined; signal: AbortSignal },
): AsyncGenerator<EventBatch<OrderEvent>> {
  return snapshotThenChanges({
    startRevision: request.startRevision,
    snapshot: async () => {
      const snapshot = await orders.snapshot(request.userId);
      return { items: snapshot.orders, revision: snapshot.revision };
    },
    toSnapshotEvent: (order, revision): OrderEvent => ({ type: "snapshot", order, revision }),
    changes: (after) => orders.changes(after, request.signal, request.userId),
  });
}
