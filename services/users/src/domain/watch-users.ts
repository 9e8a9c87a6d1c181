import { InvalidRevisionError } from "./errors.ts";
import type { UserEventBatch, UserRepository } from "./user.ts";

const snapshotBatchSize = 500;

/**
 * Streams user changes after `startRevision`; with 0, first the current state (as snapshot events,
 * in batches), then every change after it.
 */
export async function* watchUsers(
  users: UserRepository,
  request: { startRevision: bigint; signal: AbortSignal },
): AsyncGenerator<UserEventBatch> {
  if (request.startRevision < 0n) {
    throw new InvalidRevisionError("start_revision must not be negative");
  }
  let after = request.startRevision;
  if (after === 0n) {
    const snapshot = await users.snapshot();
    for (let i = 0; i < snapshot.users.length; i += snapshotBatchSize) {
      const events = snapshot.users
        .slice(i, i + snapshotBatchSize)
        .map((user) => ({ type: "snapshot" as const, user, revision: snapshot.revision }));
      yield { events, revision: snapshot.revision };
    }
    after = snapshot.revision;
  }
  yield* users.changes(after, request.signal);
}
