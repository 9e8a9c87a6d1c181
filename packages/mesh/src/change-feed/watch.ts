// Pure watch logic shared by the services' domains; it imports neither Connect nor a database.
import { observeStream } from "../protocol/stream-stages.ts";
import { encodedAs, keepOn, preEncodedBatch, type SharedEncoding } from "./convert-once.ts";

export {
  convertBatchesOnce,
  convertOnce,
  type SharedEncoding,
  sharedEncoding,
} from "./convert-once.ts";

/** A batch of events and the revision the watcher has reached. */
export interface EventBatch<E> {
  events: E[];
  revision: bigint;
}

/** A thrown when a watch asks for a revision that cannot be a starting point. */
export class InvalidStartRevisionError extends Error {
  override name = "InvalidStartRevisionError";
}

/** One page of a collection's current state, read in one transaction. */
export interface SnapshotPage<T> {
  /** Its items; none in a page kept as its encoding alone (see compactPage). */
  items: T[];
  /** The revision the page reflects. */
  revision: bigint;
  /** The key of the page's last item when more may follow; undefined on the last page. */
  next: string | undefined;
}

/**
 * The page of `rows` read with a limit of `limit + 1`: the first `limit`, converted, and the key
 * of the last of them when a row beyond them shows that more follow.
 */
export function snapshotPageOf<R, T>(
  rows: readonly R[],
  limit: number,
  revision: bigint,
  toItem: (row: R) => T,
  keyOf: (row: R) => string,
): SnapshotPage<T> {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(toItem),
    revision,
    next: rows.length > limit && last !== undefined ? keyOf(last) : undefined,
  };
}

/**
 * How many items one snapshot page holds by default: the most a watcher has in hand at once.
 * Pages of 250 and 500 were measured too (bench/README.md, "Snapshot storm with pages of 100, 250
 * and 500"): 500 made the other calls' p99 during a 100,000-row storm lower (about 18 ms against
 * 23) and the heap the storm holds larger (2.5 MiB against 1.6, growing with the collection).
 */
export const defaultSnapshotPageSize = 100;

/**
 * The events of a watch that starts after `startRevision`; with 0, the current state first.
 *
 * The state is read in pages in key order, each page in a short transaction of its own and only
 * when the stream has taken the previous one, so a watcher holds one page at a time however large
 * the collection and however slow the reader, and holds no database connection between pages.
 * Pages read at different revisions still add up to one consistent state: before page k (read at
 * revision Rk) goes out, the changes in (R(k-1), Rk] to the entities of the pages already sent
 * (keys up to the previous page's last key) go out, as snapshot events of their own revision (or
 * deletions). So after each page the watcher holds every key up to that page's last key as of
 * Rk; after the last page, everything as of its revision, from which every later change follows
 * exactly once, in order. Revisions of responses and events never go back.
 */
export function snapshotThenChanges<T, E>(
  options: SnapshotThenChangesOptions<T, E>,
): AsyncIterableIterator<EventBatch<E>> {
  return new SnapshotThenChanges(options);
}

/** Where a watch starts, and how its store reads the state and the changes. */
export interface SnapshotThenChangesOptions<T, E> {
  startRevision: bigint;
  /** Reads the page of items with keys after `after` that reflects `atLeast` or a later revision. */
  page: (request: {
    after: string | undefined;
    limit: number;
    atLeast: bigint;
  }) => Promise<SnapshotPage<T>>;
  toSnapshotEvent: (item: T, revision: bigint) => E;
  /** The changes in (after, upTo] to the entities with keys up to `through`, in order. */
  changesThrough: (request: {
    after: bigint;
    upTo: bigint;
    through: string;
  }) => AsyncIterable<EventBatch<E>>;
  /** A change to an entity the watcher already has, as an event of the state (not deletions). */
  asSnapshotEvent: (event: E) => E;
  changes: (after: bigint) => AsyncIterable<EventBatch<E>>;
  pageSize?: number;
}

/**
 * The stream of snapshotThenChanges: the snapshot's pages (an async generator), then the changes
 * handed on as they are. Not one generator for both: a generator delegating with `yield*` stays
 * suspended for as long as the watch is open, with its frame and a request per message.
 */
class SnapshotThenChanges<T, E> implements AsyncIterableIterator<EventBatch<E>> {
  // Let go of once the changes follow: what reads the state (and what it holds) is not needed
  // for as long as the watch then stays open.
  private options: SnapshotThenChangesOptions<T, E> | undefined;
  private snapshot: AsyncGenerator<EventBatch<E>, bigint> | undefined;
  private changes: AsyncIterator<EventBatch<E>> | undefined;
  private closed = false;

  constructor(options: SnapshotThenChangesOptions<T, E>) {
    this.options = options;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<EventBatch<E>>> {
    if (this.changes !== undefined) return this.changes.next();
    const options = this.options;
    if (this.closed || options === undefined)
      return Promise.resolve({ done: true, value: undefined });
    const { startRevision } = options;
    if (this.snapshot === undefined) {
      if (startRevision < 0n) {
        this.closed = true;
        return Promise.reject(new InvalidStartRevisionError("start_revision must not be negative"));
      }
      if (startRevision > 0n) return this.follow(startRevision);
      this.snapshot = snapshotPages(options);
    }
    return this.snapshot.next().then((step) => {
      if (!step.done) return step;
      if (this.changes !== undefined) return this.changes.next();
      if (this.closed) return { done: true as const, value: undefined };
      return this.follow(step.value);
    });
  }

  return(value?: unknown): Promise<IteratorResult<EventBatch<E>>> {
    this.closed = true;
    const current = this.changes ?? this.snapshot;
    return (
      current?.return?.(value as never) ?? Promise.resolve({ done: true, value: undefined })
    ).then(() => ({ done: true as const, value: undefined }));
  }

  /** The changes after `revision`, from now on. */
  private follow(revision: bigint): Promise<IteratorResult<EventBatch<E>>> {
    const changes = (this.options as SnapshotThenChangesOptions<T, E>).changes;
    this.snapshot = undefined;
    this.options = undefined;
    this.changes = changes(revision)[Symbol.asyncIterator]();
    return this.changes.next();
  }
}

/**
 * The current state in pages (see snapshotThenChanges), as batches of snapshot events; returns the
 * revision the state is at, from which the changes follow.
 */
async function* snapshotPages<T, E>(
  options: SnapshotThenChangesOptions<T, E>,
): AsyncGenerator<EventBatch<E>, bigint> {
  const limit = options.pageSize ?? defaultSnapshotPageSize;
  /** The last key the watcher has, and the revision it has every key up to it at. */
  let through: string | undefined;
  let at = 0n;
  // What goes out is handed over through `out` and the page is let go of before each yield: a
  // suspended generator keeps its locals alive (V8), and a watcher whose reader is slow would
  // hold its last page of items, events and messages the whole time.
  const out: { batch?: EventBatch<E> } = {};
  for (;;) {
    let page: SnapshotPage<T> | undefined = await options.page({
      after: through,
      limit,
      atLeast: at,
    });
    if (page.revision < at) {
      // The keys sent so far would be ahead of this page's, and its changes meanwhile lost.
      throw new Error(`a snapshot page at revision ${page.revision} was read after one at ${at}`);
    }
    if (through !== undefined && page.revision > at) {
      const changes = options
        .changesThrough({ after: at, upTo: page.revision, through })
        [Symbol.asyncIterator]();
      for (;;) {
        let step: IteratorResult<EventBatch<E>> | undefined = await changes.next();
        if (step.done) break;
        out.batch = {
          events: step.value.events.map(options.asSnapshotEvent),
          revision: step.value.revision,
        };
        step = undefined;
        yield take(out);
      }
    }
    at = page.revision;
    const next = page.next;
    // The first response goes out at once, even for an empty collection; a later page can be
    // empty only when the rows after the previous one went away meanwhile.
    const send = through === undefined || itemCount(page) > 0;
    out.batch = send ? snapshotBatchOf(page, options.toSnapshotEvent) : undefined;
    page = undefined;
    if (send) yield take(out);
    if (next === undefined) break;
    through = next;
  }
  return at;
}

/** The batch in `holder`, which no longer holds it. */
function take<B>(holder: { batch?: B }): B {
  const batch = holder.batch as B;
  holder.batch = undefined;
  return batch;
}

/**
 * `source` with each item converted as it passes, as a stage of the stream (stream-stages.ts)
 * rather than an async generator: a generator suspended at its yield keeps its locals alive (V8),
 * so one that converts would hold the last batch for as long as the stream waits for a slow
 * reader, and the interceptors' stages join this one, so that a watch holds one stream object.
 */
export function mapStream<A, B>(
  source: AsyncIterable<A>,
  convert: (item: A) => B,
): AsyncIterable<B> {
  return observeStream(source as AsyncIterable<unknown>, {
    map: convert as (item: unknown) => unknown,
  }) as AsyncIterable<B>;
}

// Watches opening together share the pages they read (ChangeFeed.readPage): each shared page
// becomes one batch of events for all of them, which the layers above then convert and encode once.
const snapshotBatchOfPage = Symbol("snapshotBatch");
/** On a page kept as its encoding alone: that encoding, and how many items it holds. */
const encodedPage = Symbol("encodedPage");

interface EncodedPage {
  [encodedPage]?: { encoding: SharedEncoding; count: number };
}

function snapshotBatchOf<T, E>(
  page: SnapshotPage<T>,
  toSnapshotEvent: (item: T, revision: bigint) => E,
): EventBatch<E> {
  return keepOn(page, snapshotBatchOfPage, () => {
    const encoded = (page as EncodedPage)[encodedPage];
    if (encoded !== undefined) return preEncodedBatch<E>(encoded.encoding, page.revision);
    return {
      events: page.items.map((item) => toSnapshotEvent(item, page.revision)),
      revision: page.revision,
    };
  });
}

function itemCount(page: SnapshotPage<unknown>): number {
  return (page as EncodedPage)[encodedPage]?.count ?? page.items.length;
}

/**
 * The same page kept as the response it became, once the serving path has encoded that response
 * in protobuf (undefined before): its revision, its next key, how many items, and the encoding.
 * Watchers that ask for the page later send those bytes as they are, and what the page holds in
 * memory is the bytes alone (outside the JavaScript heap) instead of its items, their events and
 * messages, a dozen small objects per item, which V8's young-generation collector copies for as
 * long as they live: kept for late-comers, a page lives long enough to be copied and promoted,
 * and a storm of watchers then paused every other call for 50 ms at a time.
 */
export function compactPage<P extends { revision: bigint }>(page: P): P | undefined {
  if ((page as EncodedPage)[encodedPage] !== undefined) return undefined;
  const batch = (page as { [snapshotBatchOfPage]?: object })[snapshotBatchOfPage];
  const encoding = batch === undefined ? undefined : encodedAs(batch);
  if (encoding === undefined) return undefined;
  // Only a SnapshotPage has a batch made by snapshotBatchOf.
  const { items, revision, next } = page as unknown as SnapshotPage<unknown>;
  const compact: SnapshotPage<never> = { items: [], revision, next };
  Object.defineProperty(compact, encodedPage, { value: { encoding, count: items.length } });
  return compact as unknown as P;
}

/** The bytes a page kept by compactPage holds (0 for any other page). */
export function encodedBytesOf(page: object): number {
  const encoding = (page as EncodedPage)[encodedPage]?.encoding;
  return (encoding?.frame?.byteLength ?? 0) + (encoding?.jsonFrame?.byteLength ?? 0);
}
