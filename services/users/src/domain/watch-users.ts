import { snapshotThenChanges } from "@shop/mesh/watch";
import type { UserEvent, UserEventBatch, UserRepository } from "./user.ts";

/**
 * Streams user changes after `startRevision`; with 0, first the current state (as snapshot events,
 * page by page), then every change after it.
 */
export function watchUsers(
  users: UserRepository,
  request: { startRevision: bigint; signal: AbortSignal },
): AsyncIterableIterator<UserEventBatch> {
  return snapshotThenChanges({
    startRevision: request.startRevision,
    page: (request) => users.snapshotPage(request),
    toSnapshotEvent: (user, revision): UserEvent => ({ type: "snapshot", user, revision }),
    changesThrough: (request) => users.changesThrough(request),
    asSnapshotEvent: (event) => (event.type === "deleted" ? event : { ...event, type: "snapshot" }),
    changes: (after) => users.changes(after, request.signal),
  });
}
