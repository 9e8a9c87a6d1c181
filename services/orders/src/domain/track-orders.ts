import { TooManyTrackedError } from "./errors.ts";
import type { OrderEvent, OrderRepository } from "./order.ts";
import { isVisible, type OrderScope } from "./scope.ts";

/** A change to the set of tracked orders. */
export interface TrackRequest {
  add: readonly string[];
  remove: readonly string[];
}

/** Events of tracked orders, and the ids that were added but do not exist. */
export interface TrackBatch {
  events: OrderEvent[];
  revision: bigint;
  unknownIds: string[];
}

const maxTracked = 1_000;

/**
 * Follows a set of orders that the client changes while it listens. Each added order is first sent
 * as it is now (a snapshot event at the revision of that read); after that, only its changes with a
 * later revision, so that no change is sent twice or out of order. Ends when the client closes its
 * side of the stream or `signal` aborts. Orders outside the caller's scope are reported unknown.
 */
export async function* trackOrders(
  orders: OrderRepository,
  requests: AsyncIterable<TrackRequest>,
  signal: AbortSignal,
  scope: OrderScope = undefined,
): AsyncGenerator<TrackBatch> {
  // The revision from which each tracked order's changes are new to the client.
  const trackedSince = new Map<string, bigint>();
  const { revision: start } = await orders.snapshotOf([]);
  // Ends the change stream when this one ends for any reason, so that closing it does not wait
  // for the next change or heartbeat.
  const stopChanges = new AbortController();
  const changes = orders
    .changes(start, AbortSignal.any([signal, stopChanges.signal]))
    [Symbol.asyncIterator]();
  const incoming = requests[Symbol.asyncIterator]();
  // Each read starts before it is awaited and can fail while this generator waits at a `yield`
  // (the client went away): without a handler attached at once, that would end the process.
  const readChange = () =>
    handled(changes.next().then((result) => ({ source: "changes" as const, result })));
  const readRequest = () =>
    handled(incoming.next().then((result) => ({ source: "requests" as const, result })));
  let nextChange = readChange();
  let nextRequest = readRequest();
  try {
    while (!signal.aborted) {
      const next = await Promise.race([nextChange, nextRequest]);
      if (next.source === "requests") {
        if (next.result.done) return;
        const request = next.result.value;
        nextRequest = readRequest();
        for (const id of request.remove) trackedSince.delete(id);
        const added = request.add.filter((id) => !trackedSince.has(id));
        if (trackedSince.size + added.length > maxTracked) {
          throw new TooManyTrackedError(
            `at most ${maxTracked} orders can be tracked on one stream`,
          );
        }
        const snapshot = await orders.snapshotOf(added);
        const visible = snapshot.orders.filter((order) => isVisible(scope, order));
        for (const id of added) trackedSince.set(id, snapshot.revision);
        const found = new Set(visible.map((order) => order.id));
        yield {
          events: visible.map((order) => ({
            type: "snapshot" as const,
            order,
            revision: snapshot.revision,
          })),
          revision: snapshot.revision,
          unknownIds: added.filter((id) => !found.has(id)),
        };
        continue;
      }
      if (next.result.done) return;
      const batch = next.result.value;
      nextChange = readChange();
      const events = batch.events.filter((event) => {
        const since = trackedSince.get(event.order.id);
        return since !== undefined && event.revision > since && isVisible(scope, event.order);
      });
      yield { events, revision: batch.revision, unknownIds: [] };
    }
  } finally {
    stopChanges.abort();
    await changes.return?.();
  }
}

/** `promise`, marked as handled: its rejection still reaches whoever awaits it later. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
