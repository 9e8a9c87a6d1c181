import { Code, ConnectError } from "@connectrpc/connect";
import { sql as drizzleSql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT, PgSchema } from "drizzle-orm/pg-core";
import { bigint, index, jsonb, text, timestamp } from "drizzle-orm/pg-core";
import type { Logger } from "pino";
import type { Sql } from "postgres";

/** The kind of a recorded change. */
export type ChangeType = "created" | "updated" | "deleted";

/** One committed change as read back from the log. */
export interface ChangeRecord {
  revision: bigint;
  entityId: string;
  type: ChangeType;
  /** The entity after the change (before it, for deletions), as the service stored it. */
  data: unknown;
  /** An optional key that watches can filter on (the user of an order). */
  partition: string | null;
}

/** A change to record in the same transaction as the write it describes. */
export interface NewChange {
  entityId: string;
  type: ChangeType;
  data: unknown;
  partition?: string | null;
}

/**
 * Declares the change-log table in a service's drizzle schema, so that drizzle-kit generates it
 * into the service's own migrations.
 */
export function changeLogTable(schema: PgSchema) {
  return schema.table(
    "changes",
    {
      revision: bigint("revision", { mode: "bigint" }).primaryKey(),
      entityId: text("entity_id").notNull(),
      type: text("type").$type<ChangeType>().notNull(),
      data: jsonb("data").notNull(),
      partition: text("partition"),
      commitTime: timestamp("commit_time", { withTimezone: true }).defaultNow().notNull(),
    },
    (table) => [index("changes_partition_revision_idx").on(table.partition, table.revision)],
  );
}

type AnyPgDatabase = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * Records `changes` in the service's log inside the caller's transaction and wakes the watchers
 * when it commits. Returns the revision of each change, in order.
 *
 * Revisions must grow in commit order, or a watcher reading `revision > cursor` would skip a change
 * that got a lower number but committed later. A sequence cannot promise that (numbers are taken at
 * insert, not at commit). So the revision is assigned under a transaction-scoped advisory lock that
 * is held until commit: the next writer can take a number only after this one has committed and
 * become visible. The price is that appends of one service are serialised from this call to
 * commit, so callers append last, right before committing. The alternative, reading only below the
 * snapshot's xmin horizon, keeps writers parallel but delays delivery behind any long transaction.
 */
export async function appendChanges(
  tx: AnyPgDatabase,
  schema: string,
  changes: readonly NewChange[],
): Promise<bigint[]> {
  if (changes.length === 0) return [];
  const table = drizzleSql.raw(`"${schema}".changes`);
  await tx.execute(drizzleSql`select pg_advisory_xact_lock(hashtext(${`changes:${schema}`}))`);
  const [row] = (await tx.execute(
    drizzleSql`select coalesce(max(revision), 0)::text as last from ${table}`,
  )) as unknown as { last: string }[];
  const first = BigInt(row?.last ?? "0") + 1n;
  const revisions = changes.map((_, i) => first + BigInt(i));
  const values = changes.map(
    (change, i) =>
      drizzleSql`(${String(revisions[i])}::bigint, ${change.entityId}, ${change.type}, ${JSON.stringify(change.data)}::jsonb, ${change.partition ?? null})`,
  );
  await tx.execute(
    drizzleSql`insert into ${table} (revision, entity_id, type, data, partition) values ${drizzleSql.join(values, drizzleSql`, `)}`,
  );
  await tx.execute(drizzleSql`select pg_notify(${channelOf(schema)}, ${String(revisions.at(-1))})`);
  return revisions;
}

/** The revision the caller's transaction sees: all changes up to it are visible, none after. */
export async function revisionOf(tx: AnyPgDatabase, schema: string): Promise<bigint> {
  const [row] = (await tx.execute(
    drizzleSql`select coalesce(max(revision), 0)::text as revision from ${drizzleSql.raw(`"${schema}".changes`)}`,
  )) as unknown as { revision: string }[];
  return BigInt(row?.revision ?? "0");
}

/** One response of a watch: the changes after the previous one and the revision now reached. */
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
  /** Most changes in one batch. */
  batchSize?: number;
}

/** The change feed of one service, shared by every watch in the process. */
export interface ChangeFeed {
  /** The newest committed revision this process knows of. */
  latestRevision(): bigint;
  /** Streams the changes after `options.after`, in revision order, each once. */
  watch(options: WatchOptions): AsyncGenerator<WatchBatch>;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Follows a service's change log. LISTEN/NOTIFY only wakes the feed; the log is the source of
 * truth, so a lost notification (or a dropped listener connection) costs latency, never events:
 * a poll every `pollIntervalMs` catches up meanwhile. Each watch reads the log from its own cursor,
 * so a slow watcher holds nothing in memory but its cursor.
 */
export async function createChangeFeed(options: {
  sql: Sql;
  schema: string;
  logger: Logger;
  pollIntervalMs?: number;
}): Promise<ChangeFeed> {
  const { sql, schema, logger } = options;
  const table = sql(`${schema}.changes`);
  const waiters = new Set<() => void>();
  let latest = await readLatest();
  let closed = false;

  async function readLatest(): Promise<bigint> {
    const [row] = await sql<
      { last: bigint }[]
    >`select coalesce(max(revision), 0)::bigint as last from ${table}`;
    return BigInt(row?.last ?? 0n);
  }
  const advance = (revision: bigint) => {
    if (revision <= latest) return;
    latest = revision;
    for (const wake of waiters) wake();
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
      if (latest > after || signal.aborted || closed) return resolve();
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

  async function* watch(watch: WatchOptions): AsyncGenerator<WatchBatch> {
    const heartbeatMs = watch.heartbeatMs ?? 5_000;
    const batchSize = watch.batchSize ?? 500;
    if (watch.after > 0n) {
      const [row] = await sql<
        { oldest: bigint | null }[]
      >`select min(revision) as oldest from ${table}`;
      const oldest = row?.oldest ?? null;
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
      const upTo = latest;
      const rows =
        upTo > cursor
          ? await sql<ChangeRecord[]>`
              select revision, entity_id as "entityId", type, data, partition from ${table}
              where revision > ${String(cursor)} and revision <= ${String(upTo)}
              ${watch.partition === undefined ? sql`` : sql`and partition = ${watch.partition}`}
              order by revision limit ${batchSize}`
          : [];
      const reached = rows.length === batchSize ? (rows.at(-1)?.revision ?? upTo) : upTo;
      if (reached > cursor) cursor = reached;
      const heartbeatDue = Date.now() - sentAt >= heartbeatMs;
      if (rows.length > 0 || heartbeatDue) {
        if (watch.signal.aborted) return;
        sentAt = Date.now();
        yield { records: rows, revision: cursor };
        continue;
      }
      await waitForChange(cursor, watch.signal, Math.max(0, heartbeatMs - (Date.now() - sentAt)));
    }
  }

  return {
    latestRevision: () => latest,
    watch,
    async close() {
      closed = true;
      clearInterval(poll);
      for (const wake of waiters) wake();
      await listener.unlisten().catch(() => {});
    },
  };
}

function channelOf(schema: string): string {
  return `${schema}_changes`;
}
