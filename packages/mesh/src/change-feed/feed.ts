// The change feed: one per service, it follows the change log (log.ts) by LISTEN/NOTIFY and a
// poll, keeps a window of recent changes in memory, and hands each watch its batches from there;
// it also reads snapshot pages and older changes for watches from revision 0, in turns.
import { Code, ConnectError } from "@connectrpc/connect";
import pLimit from "p-limit";
import type { Logger } from "pino";
import type { Sql } from "postgres";
import { Counter, Gauge } from "prom-client";
import { processRegistry } from "../observability/metrics.ts";
import { traceDatabaseCall } from "../observability/tracing.ts";
import { waitTurn } from "../protocol/turns.ts";
import { type ChangeRecord, channelOf } from "./log.ts";
import { compactPage, encodedBytesOf } from "./watch.ts";

/**
 * How many snapshot pages, once read and before they are kept as their encoding alone (see
 * `compactPage`), are kept for watchers that ask for the same page later: about 6,000 items at
 * the default page size (defaultSnapshotPageSize).
 */
export const sharedSnapshotPages = 64;

/**
 * How many snapshot pages kept as their encoding, and how many bytes of it at most: watchers
 * opening together drift apart over a collection (over 10,000 rows, the first of 100 has the whole
 * state in a third of the time the last takes), and a page the trailing watchers read again is
 * another read, and another copy of its items in memory for a while.
 */
export const sharedEncodedPages = 1024;
export const sharedEncodedBytes = 16 * 1024 * 1024;

/**
 * One response of a watch: the changes after the previous one and the revision now reached. Watches
 * at the same place get the same object: it is not to be changed.
 */
export interface WatchBatch {
  records: ChangeRecord[];
  revision: bigint;
}

/** Options of one watch. */
export interface WatchOptions {
  /** Deliver every change with a revision greater than this. */
  after: bigint;
  /** Ends the watch. */
  signal: AbortSignal;
  /** Only changes with this partition key, when set. */
  partition?: string;
  /** Longest silence before an empty batch tells the watcher it is still up to date. */
  heartbeatMs?: number;
  /** Most changes in one batch (100): bounds what each watcher has in flight while it catches up. */
  batchSize?: number;
}

const activeWatches = new Gauge({
  name: "change_feed_active_watches",
  help: "Watches following a service's change feed in this process right now.",
  labelNames: ["schema"],
  registers: [processRegistry],
});

const snapshotPages = new Counter({
  name: "change_feed_snapshot_pages_total",
  help: "Snapshot pages handed to watches, by where they came from: read from the database, shared as read (a read under way or kept), or kept as the response they became, encoded.",
  labelNames: ["schema", "source"],
  registers: [processRegistry],
});

/** How the keys of a service's entities compare, as the change log's `entity_id` is cast. */
export type EntityKeyType = "uuid" | "text";

/** Options of `ChangeFeed.changesThrough`. */
export interface ChangesThroughOptions {
  /** Changes with revisions greater than this... */
  after: bigint;
  /** ...up to this one. */
  upTo: bigint;
  /** Only changes to entities whose key is at most this, compared as `keyType`. */
  through: string;
  keyType: EntityKeyType;
  /** Only changes with this partition key, when set. */
  partition?: string;
}

/** The change feed of one service, shared by every watch in the process. */
export interface ChangeFeed {
  /** The newest revision this process has read from the log. */
  latestRevision(): bigint;
  /** Streams the changes after `options.after`, in revision order, each once. */
  watch(options: WatchOptions): AsyncGenerator<WatchBatch>;
  /**
   * Reads one page of a watch's initial state in its turn: at most `snapshotReaders` such reads
   * run at once in the process, first come first served, so that a storm of watchers neither
   * takes the connection pool nor starves other calls. Watches asking for the same page (`key`)
   * while it is read, or after it for as long as watches keep asking for it within a few seconds
   * and no newer change is known (of those kept: see `sharedSnapshotPages`), share that read when
   * it reflects `atLeast` or a later revision.
   */
  readPage<P extends { revision: bigint }>(
    key: string,
    atLeast: bigint,
    read: () => Promise<P>,
  ): Promise<P>;
  /**
   * The changes in (after, upTo] to the entities with keys up to `through`, in revision order, in
   * bounded batches read in the same turns as pages; out_of_range when that history is gone.
   */
  changesThrough(options: ChangesThroughOptions): AsyncGenerator<WatchBatch>;
  /** Deletes history that is both older than the retention age and beyond the retained count. */
  prune(): Promise<number>;
  /** Stops listening. */
  close(): Promise<void>;
}

/** How much history a feed keeps for watchers that resume. */
export interface Retention {
  /** At least this many of the newest changes are kept. */
  minCount: number;
  /** Changes younger than this are kept, in milliseconds. */
  minAgeMs: number;
}

/** The contract's minimum: the last 10,000 changes or 24 hours, whichever is more. */
export const defaultRetention: Retention = { minCount: 10_000, minAgeMs: 24 * 60 * 60 * 1000 };

/**
 * Follows a service's change log. LISTEN/NOTIFY only wakes the feed; the log is the source of
 * truth, so a lost notification or a dropped listener connection costs latency, never events: a
 * poll every `pollIntervalMs` catches up meanwhile, and postgres.js re-subscribes by itself.
 *
 * While anyone watches, one reader per process reads each new change once into a window of the
 * most recent `windowSize` changes (up to half as many again between trims), from which every
 * watch is served; a watch that falls behind the window reads the log itself until it catches
 * up. So memory is bounded by the window, not by the number or the slowness of the watchers, and
 * a slow watcher loses nothing. With no watch open, a change costs the feed nothing but its
 * notification.
 */
export async function createChangeFeed(options: {
  sql: Sql;
  /** Connection for the periodic polls; `sql` when absent. */
  monitor?: Sql;
  schema: string;
  logger: Logger;
  pollIntervalMs?: number;
  windowSize?: number;
  retention?: Retention;
  /** How many reads of watches' initial state run at once (2). */
  snapshotReaders?: number;
  /** How long a snapshot page read is kept once no watch asks for it (5 s). */
  pageIdleMs?: number;
}): Promise<ChangeFeed> {
  const { sql, schema, logger } = options;
  const monitor = options.monitor ?? sql;
  const windowSize = options.windowSize ?? 10_000;
  const retention = options.retention ?? defaultRetention;
  const table = sql(`${schema}.changes`);
  const waiters = new Set<() => void>();
  /** The newest revision known to be committed (from NOTIFY or a poll). */
  let committed = await readLatest();
  /** The newest revision read into the window; everything up to it is in the window or older. */
  let read = committed;
  /** The most recent changes, in revision order, all with revisions <= `read`. */
  let window: ChangeRecord[] = [];
  let reading: Promise<void> | undefined;
  let closed = false;
  /** Watches following the feed in this process: with none, nothing is read ahead. */
  let watching = 0;

  async function readLatest(): Promise<bigint> {
    const [row] = await monitor<{ last: bigint }[]>`
      select coalesce(max(revision), 0)::bigint as last from ${table}`;
    return BigInt(row?.last ?? 0n);
  }

  /** The oldest revision still in the history; null when it is empty. */
  async function oldestRevision(): Promise<bigint | null> {
    const [row] = await sql<{ oldest: bigint | null }[]>`
      select min(revision) as oldest from ${table}`;
    return row?.oldest ?? null;
  }

  function readRange(after: bigint, upTo: bigint, limit: number, partition?: string) {
    return sql<ChangeRecord[]>`
      select revision, entity_id as "entityId", type, data, partition from ${table}
      where revision > ${String(after)} and revision <= ${String(upTo)}
      ${partition === undefined ? sql`` : sql`and partition = ${partition}`}
      order by revision limit ${limit}`;
  }

  /** Reads everything committed since `read` into the window, then wakes the watchers. */
  function catchUp(): Promise<void> {
    reading ??= (async () => {
      try {
        while (read < committed && !closed) {
          const rows = await readRange(read, committed, 1_000);
          if (rows.length === 0) break;
          for (const row of rows) window.push(row);
          // Trimmed in steps, so that each change is copied a bounded number of times.
          if (window.length > windowSize * 1.5) window = window.slice(window.length - windowSize);
          read = rows.at(-1)?.revision ?? read;
          for (const wake of waiters) wake();
        }
      } catch (error) {
        logger.warn(
          { err: error },
          "change feed could not read the log; retrying on the next poll",
        );
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  }

  const advance = (revision: bigint) => {
    if (revision > committed) committed = revision;
    if (committed <= read) return;
    if (watching === 0 && reading === undefined) {
      // Nobody follows the feed, so nothing is read ahead: the next watch reads the log itself
      // from its start revision, and the window fills again from then on.
      window = [];
      read = committed;
      return;
    }
    void catchUp();
  };
  const listener = await sql.listen(
    channelOf(schema),
    (payload) => {
      if (/^\d+$/.test(payload)) advance(BigInt(payload));
    },
    () => {
      // (Re)subscribed: anything committed while the listener was away is found by reading.
      readLatest().then(advance, () => {});
    },
  );
  const poll = setInterval(() => {
    readLatest().then(advance, (error: unknown) => {
      logger.warn({ err: error }, "change feed poll failed");
    });
  }, options.pollIntervalMs ?? 1_000);
  poll.unref();

  const waitForChange = (after: bigint, signal: AbortSignal, timeoutMs: number) =>
    new Promise<void>((resolve) => {
      if (read > after || signal.aborted || closed) return resolve();
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      waiters.add(done);
      signal.addEventListener("abort", done);
    });

  // The batches served from the window while `read` stays where it is, by where they start: the
  // watches at the same place get the same batch object, so that the layers above (conversion to
  // events and messages, encoding) do their work once for all of them.
  let servedAt = read;
  const served = new Map<string, WatchBatch>();

  /** The changes after `cursor` up to `read`, from the window when it reaches back far enough. */
  async function next(cursor: bigint, limit: number, partition?: string): Promise<WatchBatch> {
    const upTo = read;
    const first = window[0];
    if (first === undefined || first.revision > cursor + 1n) {
      // Behind the window (or nothing read yet): this watcher reads the log itself.
      const rows = await readRange(cursor, upTo, limit, partition);
      const reached = rows.length === limit ? (rows.at(-1)?.revision ?? upTo) : upTo;
      return { records: rows, revision: reached };
    }
    if (servedAt !== upTo) {
      served.clear();
      servedAt = upTo;
    }
    const key = `${cursor}/${limit}/${partition ?? ""}`;
    const known = served.get(key);
    if (known !== undefined) return known;
    const start = firstAfter(window, cursor);
    const slice = window.slice(start, start + limit);
    const reached = start + limit < window.length ? (slice.at(-1)?.revision ?? upTo) : upTo;
    const rows =
      partition === undefined ? slice : slice.filter((row) => row.partition === partition);
    const batch = { records: rows, revision: reached };
    served.set(key, batch);
    return batch;
  }

  // One generator per watch, not one inside another: every batch to every watcher passes here.
  async function* watch(watch: WatchOptions): AsyncGenerator<WatchBatch> {
    activeWatches.inc({ schema });
    watching++;
    try {
      const heartbeatMs = watch.heartbeatMs ?? 5_000;
      const batchSize = watch.batchSize ?? 100;
      if (watch.after > 0n) {
        const oldest = await oldestRevision();
        if (oldest !== null && watch.after < oldest - 1n) {
          throw new ConnectError(
            `revision ${watch.after} is no longer in the history; the oldest available is ${oldest}: list again and watch from the revision the list returns`,
            Code.OutOfRange,
          );
        }
      }
      let cursor = watch.after;
      let sentAt = 0;
      while (!watch.signal.aborted && !closed) {
        const batch = read > cursor ? await next(cursor, batchSize, watch.partition) : undefined;
        if (batch !== undefined && batch.revision > cursor) cursor = batch.revision;
        const heartbeatDue = Date.now() - sentAt >= heartbeatMs;
        if ((batch !== undefined && batch.records.length > 0) || heartbeatDue) {
          if (watch.signal.aborted) return;
          sentAt = Date.now();
          yield batch?.revision === cursor ? batch : { records: [], revision: cursor };
          continue;
        }
        if (read > cursor) continue;
        await waitForChange(cursor, watch.signal, Math.max(0, heartbeatMs - (Date.now() - sentAt)));
        // Every watch woken by a change goes on now: they take turns (see waitTurn).
        await waitTurn();
      }
    } finally {
      watching--;
      activeWatches.dec({ schema });
    }
  }

  // Reads of initial state take their turn; pages read for one watch serve others at the same
  // place for a moment, so that watchers opening together read each page once between them.
  const inTurn = pLimit(options.snapshotReaders ?? 2);
  // Counted for every page every watcher gets: the labelled counters are looked up once.
  const pagesRead = snapshotPages.labels({ schema, source: "read" });
  const pagesShared = snapshotPages.labels({ schema, source: "shared" });
  const pagesEncoded = snapshotPages.labels({ schema, source: "encoded" });
  /**
   * A page being read, or read (`page`) and kept for late-comers; `timer` forgets it once nobody
   * has asked for it for `shareMs`.
   */
  type Page = { revision: bigint };
  interface SharedPage {
    reading: Promise<Page>;
    page?: Page;
    timer?: NodeJS.Timeout;
    /** When it was last handed to a watch (performance.now()). */
    usedAt: number;
    /** The bytes of its encoding when the bounds were last checked. */
    counted?: number;
  }
  /**
   * The pages kept, least recently used first. A page is kept while watchers keep asking for it:
   * watchers opening together drift apart over a large collection (100 of them over 100,000 rows
   * spread over tens of seconds), and with a fixed time from its read a page left before the
   * trailing ones reached it, who read it again (each page about 6 times in such a storm, and each
   * read's rows decoded into objects the young-generation collector then copies). The bounds
   * (`trim`) still hold; least recently used leaves first, which is a page every watcher has passed.
   */
  const pages = new Map<string, SharedPage>();
  const shareMs = options.pageIdleMs ?? 5_000;
  const keepWhileUsed = (key: string, entry: SharedPage) => {
    const expire = () => {
      const idle = performance.now() - entry.usedAt;
      if (idle >= shareMs) forget(key, entry);
      else entry.timer = setTimeout(expire, shareMs - idle).unref();
    };
    entry.timer = setTimeout(expire, shareMs).unref();
  };
  const forget = (key: string, entry: SharedPage) => {
    // The timer holds the page through its closure: it goes with the page, or the page would stay
    // in memory for the rest of its time after leaving the map.
    clearTimeout(entry.timer);
    if (pages.get(key) === entry) pages.delete(key);
  };
  /** The page `entry` keeps, kept from now on as its encoding alone once it can be. */
  const compacted = (entry: SharedPage & { page: Page }) => {
    const compact = compactPage(entry.page);
    if (compact !== undefined) {
      entry.page = compact;
      // The settled read holds the page it read: it goes too.
      entry.reading = Promise.resolve(compact);
    }
    return entry.page;
  };
  /**
   * Keeps the pages read within their bounds, the least recently used leaving first: at most
   * `sharedSnapshotPages` as read, and as their encoding at most `sharedEncodedPages` and
   * `sharedEncodedBytes`.
   */
  const trim = () => {
    let read = 0;
    let encoded = 0;
    let bytes = 0;
    for (const [key, entry] of [...pages].reverse()) {
      if (entry.page === undefined) continue;
      const bytesOf = encodedBytesOf(compacted(entry as SharedPage & { page: Page }));
      entry.counted = bytesOf;
      bytes += bytesOf;
      const within =
        bytesOf === 0
          ? ++read <= sharedSnapshotPages
          : ++encoded <= sharedEncodedPages && bytes <= sharedEncodedBytes;
      if (!within) forget(key, entry);
    }
  };

  async function readPage<P extends { revision: bigint }>(
    key: string,
    atLeast: bigint,
    readOne: () => Promise<P>,
  ): Promise<P> {
    const page = await pageFor(key, atLeast, readOne);
    // Every watcher waiting for a page goes on when it is read: they take turns (see waitTurn).
    await waitTurn();
    return page;
  }

  async function pageFor<P extends { revision: bigint }>(
    key: string,
    atLeast: bigint,
    readOne: () => Promise<P>,
  ): Promise<P> {
    const shared = pages.get(key);
    if (shared !== undefined) {
      const done = shared.page !== undefined;
      const page = done
        ? compacted(shared as SharedPage & { page: Page })
        : await shared.reading.catch(() => undefined);
      // A read done before the newest change known here is no longer the current state.
      const current = !done || (page !== undefined && page.revision >= committed);
      if (page !== undefined && page.revision >= atLeast && current) {
        const bytes = encodedBytesOf(page);
        (bytes > 0 ? pagesEncoded : pagesShared).inc();
        if (done) {
          shared.usedAt = performance.now();
          pages.delete(key);
          pages.set(key, shared);
        }
        // Kept as its encoding since the bounds were checked, or given its JSON since: again.
        if (done && bytes !== shared.counted) trim();
        return page as P;
      }
      // Replaced by a newer read: it leaves now, timer and all, and the new one is the newest.
      forget(key, shared);
    }
    pagesRead.inc();
    const reading: Promise<Page> = inTurn(() => traceDatabaseCall(schema, "snapshotPage", readOne));
    const entry: SharedPage = { reading, usedAt: 0 };
    pages.set(key, entry);
    reading.then(
      (page) => {
        if (pages.get(key) !== entry) return;
        entry.page = page;
        entry.usedAt = performance.now();
        keepWhileUsed(key, entry);
        trim();
      },
      () => forget(key, entry),
    );
    return reading as Promise<P>;
  }

  async function* changesThrough(range: ChangesThroughOptions): AsyncGenerator<WatchBatch> {
    if (range.upTo <= range.after) return;
    // Some of the range's changes exist (upTo > after), so an empty log means they are gone too.
    const oldest = await inTurn(oldestRevision);
    if (oldest === null || oldest > range.after + 1n) {
      throw new ConnectError(
        `the changes made while the initial state was read are no longer in the history (oldest revision ${oldest ?? "none"}): watch again`,
        Code.OutOfRange,
      );
    }
    const limit = 500;
    const through =
      range.keyType === "uuid"
        ? sql`and entity_id::uuid <= ${range.through}::uuid`
        : sql`and entity_id <= ${range.through}`;
    let cursor = range.after;
    while (cursor < range.upTo) {
      const rows = await inTurn(
        () => sql<ChangeRecord[]>`
          select revision, entity_id as "entityId", type, data, partition from ${table}
          where revision > ${String(cursor)} and revision <= ${String(range.upTo)} ${through}
          ${range.partition === undefined ? sql`` : sql`and partition = ${range.partition}`}
          order by revision limit ${limit}`,
      );
      cursor = rows.length === limit ? (rows.at(-1)?.revision ?? range.upTo) : range.upTo;
      if (rows.length > 0) yield { records: rows, revision: cursor };
    }
  }

  return {
    latestRevision: () => read,
    watch,
    readPage,
    changesThrough,
    async prune() {
      const deleted = await sql`
        delete from ${table}
        where revision <= (select max(revision) from ${table}) - ${retention.minCount}
          and commit_time < now() - make_interval(secs => ${retention.minAgeMs / 1000})`;
      return deleted.count;
    },
    async close() {
      closed = true;
      clearInterval(poll);
      for (const wake of waiters) wake();
      await listener.unlisten().catch(() => {});
    },
  };
}

/** The index of the first record with a revision greater than `cursor` (binary search). */
function firstAfter(records: readonly ChangeRecord[], cursor: bigint): number {
  let low = 0;
  let high = records.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((records[mid]?.revision ?? 0n) <= cursor) low = mid + 1;
    else high = mid;
  }
  return low;
}
