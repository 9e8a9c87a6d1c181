// The change log: the table every service's committed changes go to, each with the next revision
// of its schema, in the same transaction as the change itself (appendChanges), and what reads the
// revision a transaction sees. The change feed (feed.ts) reads it for watchers.
import { sql as drizzleSql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT, PgSchema } from "drizzle-orm/pg-core";
import { bigint, index, jsonb, text, timestamp } from "drizzle-orm/pg-core";
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

const lockStatement = "select pg_advisory_xact_lock(hashtext($1))";

/**
 * Records `changes` in the service's log inside the caller's transaction and wakes the watchers
 * when it commits. Returns the revision of each change, in order.
 *
 * Revisions must grow in commit order, or a watcher reading `revision > cursor` would skip a change
 * that got a lower number but committed later. A sequence cannot promise that (numbers are taken at
 * insert, not at commit). So the revision is assigned under a transaction-scoped advisory lock that
 * is held until commit: the next writer can take a number only after this one has committed and
 * become visible. The price is that appends of one service are serialised from the lock to
 * commit, across all its replicas (docs/scaling.md measures it), so callers append last, right
 * before committing. The alternative, reading only below the snapshot's xmin horizon, keeps
 * writers parallel but delays delivery behind any long transaction.
 */
export function appendChanges(
  tx: AnyPgDatabase,
  schema: string,
  changes: readonly NewChange[],
): Promise<bigint[]> {
  return appendChangesOn(connectionOf(tx), schema, changes);
}

/** appendChanges on the postgres.js connection of a transaction. */
export async function appendChangesOn(
  connection: Pick<Sql, "unsafe">,
  schema: string,
  changes: readonly NewChange[],
): Promise<bigint[]> {
  if (changes.length === 0) return [];
  // The lock must be its own statement: a statement's snapshot is taken when it starts, so reading
  // max(revision) in the same statement that waits for the lock would miss the previous holder's
  // commit. But the two are sent together (postgres.js pipelines the queries of one connection):
  // PostgreSQL still runs the append only once the lock statement has finished, with a snapshot
  // taken then, and the lock is not held across a round trip to this process and back, which
  // under load is most of the time it is held.
  const [, [row]] = await Promise.all([
    connection.unsafe(lockStatement, [`changes:${schema}`], { prepare: true }),
    // Numbering, inserting and notifying in one statement.
    connection.unsafe<{ first: string }[]>(
      appendStatement(schema),
      [
        changes.map((change) => change.entityId),
        changes.map((change) => change.type),
        changes.map((change) => JSON.stringify(change.data)),
        changes.map((change) => change.partition ?? null),
        channelOf(schema),
      ],
      { prepare: true },
    ),
  ]);
  const first = BigInt(row?.first ?? "0");
  return changes.map((_, i) => first + BigInt(i));
}

/**
 * Takes a transaction-scoped advisory lock on `key` in the caller's transaction: it is held until
 * the transaction ends.
 */
export async function lockTransaction(tx: AnyPgDatabase, key: string): Promise<void> {
  await connectionOf(tx).unsafe(lockStatement, [key], { prepare: true });
}

/**
 * The one statement that numbers, records and announces a batch of changes: the same text for any
 * batch (the changes go as arrays), so the driver prepares it once per connection.
 */
export function appendStatement(schema: string): string {
  return `
    with base as (select coalesce(max(revision), 0) as last from "${schema}".changes),
    added as (
      insert into "${schema}".changes (revision, entity_id, type, data, partition)
      select base.last + v.ord, v.entity_id, v.type, v.data::jsonb, v.partition
      from base, unnest($1::text[], $2::text[], $3::text[], $4::text[])
        with ordinality as v(entity_id, type, data, partition, ord)
      returning revision
    )
    select (select min(revision) from added)::text as first,
           pg_notify($5, (select max(revision) from added)::text)`;
}

/**
 * The postgres.js connection a drizzle transaction runs on. drizzle sends the statements it
 * builds unprepared; the change log's are the same text every time, so they go to the driver
 * directly and are parsed and planned once per connection.
 */
function connectionOf(tx: AnyPgDatabase): Sql {
  const client = (tx as unknown as { session?: { client?: unknown } }).session?.client;
  if (typeof client !== "function") {
    throw new Error("expected a drizzle postgres-js database or transaction");
  }
  return client as Sql;
}

/** The revision the caller's transaction sees: all changes up to it are visible, none after. */
export async function revisionOf(tx: AnyPgDatabase, schema: string): Promise<bigint> {
  const [row] = (await tx.execute(
    drizzleSql`select coalesce(max(revision), 0)::text as revision from ${drizzleSql.raw(`"${schema}".changes`)}`,
  )) as unknown as { revision: string }[];
  return BigInt(row?.revision ?? "0");
}

/** The NOTIFY channel a schema's appended changes are announced on. */
export function channelOf(schema: string): string {
  return `${schema}_changes`;
}
