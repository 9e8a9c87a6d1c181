import { type EventBatch, snapshotThenChanges } from "@shop/mesh/watch";
import type { OrderEvent, OrderRepository } from "./order.ts";
import { type OrderScope, userWithin } from "./scope.ts";

/**
 * Streams order changes (of one user, when given; a customer's own only) after `startRevision`;
 * with 0, the current state first.
 */
export function watchOrders(
  orders: OrderRepository,
  query: { startRevision: bigint; userId: string | undefined; signal: AbortSignal },
  scope: OrderScope = undefined,
): AsyncIterableIterator<EventBatch<OrderEvent>> {
  const request = { ...query, userId: userWithin(scope, query.userId) };
  return snapshotThenChanges({
    startRevision: request.startRevision,
    page: (page) => orders.snapshotPage({ ...page, userId: request.userId }),
    toSnapshotEvent: (order, revision): OrderEvent => ({ type: "snapshot", order, revision }),
    changesThrough: (range) => orders.changesThrough({ ...range, userId: request.userId }),
    asSnapshotEvent: (event) => (event.type === "deleted" ? event : { ...event, type: "snapshot" }),
    changes: (after) => orders.changes(after, request.signal, request.userId),
  });
}
