import { snapshotThenChanges } from "@shop/mesh/watch";
import type { UserEvent, UserEventBatch, UserRepository } from "./user.ts";

/**
 * Streams user changes after `startRevision`; with 0, first the current state (as snapshot events,
 * in batches), then every change after it.
 */
export function watchUsers(
  users: UserRepository,
  request: { startRevision: bigint; signal: AbortSignal },
): AsyncGenerator<UserEventBatch> {
  return snapshotThenChanges({
    startRevision: request.startRevision,
    snapshot: async () => {
      const { users: items, revision } = await users.snapshot();
      return { items, revision };
    },
    toSnapshotEvent: (user, revision): UserEvent => ({ type: "snapshot", user, revision }),
    changes: (after) => users.changes(after, request.signal),
  });
}
