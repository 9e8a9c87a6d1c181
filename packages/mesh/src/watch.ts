// Pure watch logic shared by the services' domains; it imports neither Connect nor a database.

/** A batch of events and the revision the watcher has reached. */
export interface EventBatch<E> {
  events: E[];
  revision: bigint;
}

/** A thrown when a watch asks for a revision that cannot be a starting point. */
export class InvalidStartRevisionError extends Error {
  override name = "InvalidStartRevisionError";
}

/**
 * The events of a watch that starts after `startRevision`. With 0 the watcher first gets the
 * current state, as snapshot events in batches of `batchSize`, then every change after the revision
 * that state reflects; otherwise it gets every change after `startRevision`.
 */
export async function* snapshotThenChanges<T, E>(options: {
  startRevision: bigint;
  snapshot: () => Promise<{ items: T[]; revision: bigint }>;
  toSnapshotEvent: (item: T, revision: bigint) => E;
  changes: (after: bigint) => AsyncIterable<EventBatch<E>>;
  batchSize?: number;
}): AsyncGenerator<EventBatch<E>> {
  if (options.startRevision < 0n) {
    throw new InvalidStartRevisionError("start_revision must not be negative");
  }
  let after = options.startRevision;
  if (after === 0n) {
    const batchSize = options.batchSize ?? 500;
    const { items, revision } = await options.snapshot();
    for (let i = 0; i < items.length; i += batchSize) {
      const events = items
        .slice(i, i + batchSize)
        .map((item) => options.toSnapshotEvent(item, revision));
      yield { events, revision };
    }
    after = revision;
  }
  yield* options.changes(after);
}

/**
 * Converts whole batches once while they live, each into an event batch of `convert`ed items
 * (`convert` being itself a `convertOnce`): the change feed hands every watch at the same place
 * the same batch, so those watches share one converted batch, which the gRPC path then encodes
 * once for all of them.
 */
export function convertBatchesOnce<T extends { revision: bigint }, A, B>(
  itemsOf: (batch: T) => readonly A[],
  convert: (item: A) => B,
): (batch: T) => EventBatch<B> {
  return convertOnce((batch: T) => ({
    events: itemsOf(batch).map(convert),
    revision: batch.revision,
  }));
}

/**
 * Wraps a conversion so that each input object is converted once while it lives: the change feed
 * hands every watcher the same record objects, so every watcher then shares one converted event
 * instead of building its own copy (which, for many watchers catching up at once, costs megabytes
 * each).
 */
export function convertOnce<A extends object, B>(convert: (input: A) => B): (input: A) => B {
  const converted = new WeakMap<A, B>();
  return (input) => {
    let output = converted.get(input);
    if (output === undefined) {
      output = convert(input);
      converted.set(input, output);
    }
    return output;
  };
}
