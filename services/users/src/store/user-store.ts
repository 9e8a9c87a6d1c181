import {
  appendChanges,
  type ChangeFeed,
  type ChangeRecord,
  type Database,
  revisionOf,
  type WatchBatch,
} from "@shop/mesh";
import { convertBatchesOnce, convertOnce, mapStream, snapshotPageOf } from "@shop/mesh/watch";
import { and, asc, count, desc, eq, gt, ilike, lt, or, type SQL, sql } from "drizzle-orm";
import { userContractRules } from "../contract-rules.ts";
import { EmailTakenError, UserNotFoundError, VersionMismatchError } from "../domain/errors.ts";
import type { NewUser, User, UserEvent, UserEventBatch, UserPatch, Users } from "../domain/user.ts";
import { type tables, users } from "./schema.ts";

type Row = typeof users.$inferSelect;

/** The users table and change log over PostgreSQL. */
export function createUserStore(database: Database<typeof tables>, feed: ChangeFeed): Users {
  const { db, schema } = database;
  const sharedEvent = convertOnce(toEvent);
  // Watches at the same place get the same batch from the feed, and so the same batch of events.
  const sharedBatch = convertBatchesOnce((batch: WatchBatch) => batch.records, sharedEvent);
  // The lookup every GetUser makes (and every order, through GetUser), built once and prepared
  // on each connection by the driver, rather than built and planned for every call.
  const byId = db
    .select()
    .from(users)
    .where(eq(users.id, sql.placeholder("id")))
    .prepare("users_by_id");

  return {
    rules: userContractRules,

    async insert(newUsers: readonly NewUser[]) {
      try {
        return await db.transaction(async (tx) => {
          const rows = await tx
            .insert(users)
            .values([...newUsers])
            .returning();
          rows.sort((a, b) => (a.seq < b.seq ? -1 : 1));
          await appendChanges(
            tx,
            schema,
            rows.map((row) => ({ entityId: row.id, type: "created", data: toData(row) })),
          );
          return rows.map(toUser);
        });
      } catch (error) {
        throw translate(error, newUsers);
      }
    },

    async get(id) {
      const [row] = await byId.execute({ id });
      return row && toUser(row);
    },

    async list({ query, newestFirst, cursor, limit }) {
      const matches = matching(query);
      const after = cursor === undefined ? undefined : BigInt(cursor);
      const past =
        after === undefined ? undefined : newestFirst ? lt(users.seq, after) : gt(users.seq, after);
      return db.transaction(
        async (tx) => {
          if (matches !== undefined) {
            // The driver prepares each statement, and after a few runs PostgreSQL may plan it once
            // for any pattern: that plan walks every user for a rare query, where a plan made for
            // the pattern takes the trigram indexes.
            await tx.execute(sql`set local plan_cache_mode = force_custom_plan`);
          }
          const rows = await tx
            .select()
            .from(users)
            .where(and(matches, past))
            .orderBy(newestFirst ? desc(users.seq) : asc(users.seq))
            .limit(limit + 1);
          const [counted] = await tx.select({ total: count() }).from(users).where(matches);
          const revision = await revisionOf(tx, schema);
          const page = rows.slice(0, limit);
          const last = page.at(-1);
          return {
            users: page.map(toUser),
            nextCursor: rows.length > limit && last ? String(last.seq) : undefined,
            revision,
            totalSize: counted?.total ?? 0,
          };
        },
        { isolationLevel: "repeatable read", accessMode: "read only" },
      );
    },

    snapshotPage({ after, limit, atLeast }) {
      return feed.readPage(`users/${after ?? ""}/${limit}`, atLeast, () =>
        db.transaction(
          async (tx) => {
            const rows = await tx
              .select()
              .from(users)
              .where(after === undefined ? undefined : gt(users.id, after))
              .orderBy(asc(users.id))
              .limit(limit + 1);
            const revision = await revisionOf(tx, schema);
            return snapshotPageOf(rows, limit, revision, toUser, (row) => row.id);
          },
          { isolationLevel: "repeatable read", accessMode: "read only" },
        ),
      );
    },

    async *changesThrough(range) {
      for await (const batch of feed.changesThrough({ ...range, keyType: "uuid" })) {
        yield sharedBatch(batch);
      }
    },

    async update(id, expectedVersion, patch: UserPatch) {
      try {
        return await db.transaction(async (tx) => {
          const [row] = await tx
            .update(users)
            .set({ ...patch, version: sql`${users.version} + 1`, updateTime: sql`now()` })
            .where(and(eq(users.id, id), eq(users.version, expectedVersion)))
            .returning();
          if (!row) {
            const [current] = await tx
              .select({ version: users.version })
              .from(users)
              .where(eq(users.id, id));
            if (!current) throw new UserNotFoundError(id);
            throw new VersionMismatchError(id, expectedVersion, current.version);
          }
          await appendChanges(tx, schema, [
            { entityId: row.id, type: "updated", data: toData(row) },
          ]);
          return toUser(row);
        });
      } catch (error) {
        throw translate(error, patch.email === undefined ? [] : [{ name: "", email: patch.email }]);
      }
    },

    changes(after, signal): AsyncIterable<UserEventBatch> {
      return mapStream(feed.watch({ after, signal }), sharedBatch);
    },
  };
}

/**
 * The condition of the users whose name or email contains `query`, ignoring case; undefined (every
 * user) when it is empty. The query's LIKE wildcards and backslash (LIKE's escape character) are
 * escaped, so that `%` or `_` in a query match themselves.
 */
function matching(query: string): SQL | undefined {
  if (query === "") return undefined;
  // PostgreSQL text cannot hold NUL, so no name or email contains one; nor would it take the
  // pattern as a parameter.
  if (query.includes("\u0000")) return sql`false`;
  const pattern = `%${query.replace(/[\\%_]/g, "\\$&")}%`;
  return or(ilike(users.name, pattern), ilike(users.email, pattern));
}

/** The user as stored in the change log: JSON, with bigints and dates as strings. */
interface UserData {
  id: string;
  name: string;
  email: string;
  status: User["status"];
  createTime: string;
  updateTime: string;
  version: string;
}

function toData(row: Row): UserData {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    status: row.status,
    createTime: row.createTime.toISOString(),
    updateTime: row.updateTime.toISOString(),
    version: String(row.version),
  };
}

function toEvent(record: ChangeRecord): UserEvent {
  const data = record.data as UserData;
  return {
    type: record.type,
    revision: BigInt(record.revision),
    user: {
      id: data.id,
      name: data.name,
      email: data.email,
      status: data.status,
      createTime: new Date(data.createTime),
      updateTime: new Date(data.updateTime),
      version: BigInt(data.version),
    },
  };
}

function toUser(row: Row): User {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    status: row.status,
    createTime: row.createTime,
    updateTime: row.updateTime,
    version: row.version,
  };
}

/** Turns a unique violation on the email index into EmailTakenError; other errors pass. */
function translate(error: unknown, attempted: readonly NewUser[]): unknown {
  const cause = (error as { cause?: { code?: string; detail?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  if (code !== "23505") return error;
  const detail = cause?.detail ?? (error as { detail?: string }).detail ?? "";
  const taken = attempted.find((user) => detail.includes(`(${user.email.toLowerCase()})`));
  return new EmailTakenError(taken?.email ?? attempted[0]?.email ?? "");
}
