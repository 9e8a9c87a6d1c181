// Converting once what many watchers share: the change feed hands every watch at the same place the
// same objects, and each layer above converts each of them once (into events, messages, encodings)
// for all those watches, keeping the result on the object itself.
import type { EventBatch } from "./watch.ts";

/**
 * Converts whole batches once while they live, each into an event batch of `convert`ed items
 * (`convert` being itself a `convertOnce`): the change feed hands every watch at the same place
 * the same batch, so those watches share one converted batch, which the serving path then encodes
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
 * each). The output is shared by everyone who converts the same input, and is not to be changed:
 * the serving path encodes an object output once for every stream that sends it
 * (`sharedEncoding`).
 */
export function convertOnce<A extends object, B>(convert: (input: A) => B): (input: A) => B {
  const converted = Symbol("converted");
  return (input) =>
    keepOn(input, converted, () => {
      const output = convert(input);
      if (typeof output === "object" && output !== null && Object.isExtensible(output)) {
        const encoding: SharedEncoding = { frame: undefined, jsonFrame: undefined };
        Object.defineProperty(output, sharedEncoding, { value: encoding });
      }
      return output;
    });
}

/**
 * Where an output of `convertOnce` keeps its encoding once the serving path has made it, for every
 * other stream that sends the same object.
 */
export const sharedEncoding = Symbol("sharedEncoding");

/** What `sharedEncoding` holds: the enveloped message in protobuf and in JSON, once made. */
export interface SharedEncoding {
  frame: Uint8Array | undefined;
  jsonFrame: Uint8Array | undefined;
}

/**
 * What `make` makes of `owner`, made once and kept on `owner` itself, under `key` (a property no
 * copy of it takes: `{ ...owner }` leaves it out).
 *
 * Not in a WeakMap: V8's young-generation collector keeps every value of a WeakMap alive whatever
 * becomes of its key, so each batch converted for a storm of watchers would survive into the old
 * generation and wait there for a full collection. With 100 watchers reading a snapshot, that was
 * 11 MB copied by each minor collection and 60-100 ms pauses for every other call.
 */
export function keepOn<O extends object, V>(owner: O, key: symbol, make: () => V): V {
  const kept = owner as O & Record<symbol, V>;
  if (key in kept) return kept[key] as V;
  const value = make();
  if (Object.isExtensible(owner)) Object.defineProperty(owner, key, { value });
  return value;
}
