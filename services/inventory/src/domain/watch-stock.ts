import { type EventBatch, snapshotThenChanges } from "@shop/mesh/watch";
import type { InventoryRepository, ProductEvent } from "./product.ts";

/** Streams product changes after `startRevision`; with 0, the current catalog first. */
export function watchStock(
  inventory: InventoryRepository,
  request: { startRevision: bigint; signal: AbortSignal },
): AsyncGenerator<EventBatch<ProductEvent>> {
  return snapshotThenChanges({
    startRevision: request.startRevision,
    snapshot: async () => {
      const { products, revision } = await inventory.snapshot();
      return { items: products, revision };
    },
    toSnapshotEvent: (product, revision): ProductEvent => ({ type: "snapshot", product, revision }),
    changes: (after) => inventory.changes(after, request.signal),
  });
}
