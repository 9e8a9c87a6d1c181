import { type EventBatch, snapshotThenChanges } from "@shop/mesh/watch";
import type { InventoryRepository, ProductEvent } from "./product.ts";

/** Streams product changes after `startRevision`; with 0, the current catalog first. */
export function watchStock(
  inventory: InventoryRepository,
  request: { startRevision: bigint; signal: AbortSignal },
): AsyncIterableIterator<EventBatch<ProductEvent>> {
  return snapshotThenChanges({
    startRevision: request.startRevision,
    page: (request) => inventory.snapshotPage(request),
    toSnapshotEvent: (product, revision): ProductEvent => ({ type: "snapshot", product, revision }),
    changesThrough: (request) => inventory.changesThrough(request),
    asSnapshotEvent: (event) => (event.type === "deleted" ? event : { ...event, type: "snapshot" }),
    changes: (after) => inventory.changes(after, request.signal),
  });
}
