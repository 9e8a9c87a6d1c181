// Converting once what many watchers share: the change feed hands every watch at the same place the
// same objects, and each layer above converts each of them once (into events, messages, encodings)
// for all those watches, keeping the result on the object itself.
import { type DescMessage, fromBinary } from "@bufbuild/protobuf";
import { messageOf } from "../protocol/envelope.ts";
import type { EventBatch } from "./watch.ts";

/**
 * Converts whole batches once while they live, each into an event batch of `convert`ed items
 * (`convert` being itself a `convertOnce`): the change feed hands every watch at the same place
 * the same batch, so those watches share one converted batch, which the serving path then encodes
 * once for all of them (`sharedEncoding`). A batch that stands for a response already encoded
 * (`preEncodedBatch`) becomes that response again, without being converted.
 */
export function convertBatchesOnce<T extends { revision: bigint }, A, B>(
  itemsOf: (batch: T) => readonly A[],
  convert: (item: A) => B,
): (batch: T) => EventBatch<B> {
  const converted = Symbol("converted batch");
  return (batch) =>
    keepOn(batch, converted, () => {
      const encoded = (batch as { [preEncoded]?: SharedEncoding })[preEncoded];
      if (encoded !== undefined) return decodedLazily(encoded) as EventBatch<B>;
      const output: EventBatch<B> = {
        events: itemsOf(batch).map(convert),
        revision: batch.revision,
      };
      const encoding: SharedEncoding = {
        frame: undefined,
        jsonFrame: undefined,
        schema: undefined,
      };
      Object.defineProperty(output, sharedEncoding, { value: encoding });
      keepOn(batch, encodingOfOutput, () => encoding);
      return output;
    });
}

/**
 * Wraps a conversion so that each input object is converted once while it lives: the change feed
 * hands every watcher the same record objects, so every watcher then shares one converted event
 * instead of building its own copy (which, for many watchers catching up at once, costs megabytes
 * each). The output is shared by everyone who converts the same input, and is not to be changed.
 */
export function convertOnce<A extends object, B>(convert: (input: A) => B): (input: A) => B {
  const converted = Symbol("converted");
  return (input) => keepOn(input, converted, () => convert(input));
}

/**
 * Where an output of `convertBatchesOnce` keeps its encoding once the serving path has made it,
 * for every other stream that sends the same object.
 */
export const sharedEncoding = Symbol("sharedEncoding");

/**
 * What `sharedEncoding` holds: the enveloped message in protobuf and in JSON, once made, and the
 * schema they were made with (set with the first).
 */
export interface SharedEncoding {
  frame: Uint8Array | undefined;
  jsonFrame: Uint8Array | undefined;
  schema: DescMessage | undefined;
}

/** On a batch given to `convertBatchesOnce`: the encoding of what it became. */
const encodingOfOutput = Symbol("encodingOfOutput");
/** On a batch made by `preEncodedBatch`: the encoding it stands for. */
const preEncoded = Symbol("preEncoded");

/**
 * The encoding of the response `batch` became (through `convertBatchesOnce`), once the serving
 * path has encoded it in protobuf; undefined before.
 */
export function encodedAs(batch: object): SharedEncoding | undefined {
  const encoding = (batch as { [encodingOfOutput]?: SharedEncoding })[encodingOfOutput];
  return encoding?.frame !== undefined && encoding.schema !== undefined ? encoding : undefined;
}

/**
 * A batch that stands for the response `encoding` holds: `convertBatchesOnce` turns it back into
 * that response (its frames as they are, its fields decoded from them only if someone reads them),
 * so that what was kept of it is the bytes alone. Its own `events` are empty: it is for sending,
 * not for reading.
 */
export function preEncodedBatch<E>(encoding: SharedEncoding, revision: bigint): EventBatch<E> {
  const batch: EventBatch<E> = { events: [], revision };
  Object.defineProperty(batch, preEncoded, { value: encoding });
  return batch;
}

/**
 * The message `encoding` holds, decoded from its protobuf frame when read: the serving path sends
 * the frames it finds under `sharedEncoding` without reading a field; anyone else (JSON made
 * later, another library's serializer, an interceptor) reads the message itself. The decoded
 * message is held weakly: a page kept as its encoding must not keep its objects too, and whoever
 * reads it holds it while reading (a WeakRef's target lives at least to the end of the job).
 */
function decodedLazily(encoding: SharedEncoding): object {
  let decoded: WeakRef<Record<PropertyKey, unknown>> | undefined;
  const message = () => {
    let current = decoded?.deref();
    if (current === undefined) {
      const { frame, schema } = encoding as Required<{
        [K in keyof SharedEncoding]: NonNullable<SharedEncoding[K]>;
      }>;
      current = fromBinary(schema, messageOf(frame)) as Record<PropertyKey, unknown>;
      decoded = new WeakRef(current);
    }
    return current;
  };
  // Symbols are never fields: they stay on the proxy's own target and decode nothing. Nothing is
  // written to it: it stands for a message that is not to be changed.
  return new Proxy({} as Record<PropertyKey, unknown>, {
    get: (target, key) => {
      if (typeof key === "symbol") return key === sharedEncoding ? encoding : target[key];
      return message()[key];
    },
    set: () => false,
    has: (target, key) =>
      typeof key === "symbol" ? key === sharedEncoding || key in target : key in message(),
    ownKeys: (target) => [...Reflect.ownKeys(message()), ...Reflect.ownKeys(target)],
    getOwnPropertyDescriptor: (target, key) =>
      typeof key === "symbol"
        ? Reflect.getOwnPropertyDescriptor(target, key)
        : Reflect.getOwnPropertyDescriptor(message(), key),
  });
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
