import {
  appendChanges,
  type ChangeFeed,
  type ChangeRecord,
  type Database,
  revisionOf,
  type WatchBatch,
} from "@shop/mesh";
import { convertBatchesOnce, convertOnce, mapStream, snapshotPageOf } from "@shop/mesh/watch";
import { and, asc, count, desc, eq, gt, inArray, isNotNull, lt, sql } from "drizzle-orm";
import { orderContractRules } from "../contract-rules.ts";
import { OrderNotCancellableError, OrderNotFoundError } from "../domain/errors.ts";
import type { Order, OrderEvent, Orders, PendingOrder, RecordedRequest } from "../domain/order.ts";
import { orders, type tables } from "./schema.ts";

type Row = typeof orders.$inferSelect;

/** The orders table and change log over PostgreSQL. */
export function createOrderStore(database: Database<typeof tables>, feed: ChangeFeed): Orders {
  const { db, schema } = database;
  const sharedEvent = convertOnce(toEvent);
  // Watches at the same place get the same batch from the feed, and so the same batch of events.
  const sharedBatch = convertBatchesOnce((batch: WatchBatch) => batch.records, sharedEvent);
  const readOnly = { isolationLevel: "repeatable read", accessMode: "read only" } as const;

  // Pending and compensating orders were never acknowledged: no read shows them.
  const acknowledged = inArray(orders.status, ["confirmed", "cancelled"]);
  // The lookups of GetOrder and of every CreateOrder with a request id (also when its pending
  // insert met an order already recorded for it), built once and prepared on each connection by
  // the driver, rather than built and planned for every call.
  const byId = db
    .select()
    .from(orders)
    .where(and(eq(orders.id, sql.placeholder("id")), acknowledged))
    .prepare("orders_by_id");
  const byRequestId = db
    .select()
    .from(orders)
    .where(eq(orders.requestId, sql.placeholder("requestId")))
    .prepare("orders_by_request_id");
  // The first step of every CreateOrder: record the order as pending (nothing happens when its
  // request id is already recorded).
  const insertPending = db
    .insert(orders)
    .values({
      id: sql.placeholder("id"),
      userId: sql.placeholder("userId"),
      items: sql.placeholder("items"),
      totalCents: 0n,
      status: "pending",
      requestId: sql.placeholder("requestId"),
      requestFingerprint: sql.placeholder("requestFingerprint"),
    })
    .onConflictDoNothing()
    .returning()
    .prepare("orders_insert_pending");

  return {
    rules: orderContractRules,

    async begin(order: PendingOrder) {
      const [row] = await insertPending.execute({
        id: order.id,
        userId: order.userId,
        items: order.items.map((item) => ({
          sku: item.sku,
          quantity: String(item.quantity),
          unitPriceCents: "0",
        })),
        requestId: order.requestId === "" ? null : order.requestId,
        requestFingerprint: order.requestFingerprint,
      });
      if (row) return { created: true, recorded: recordedOf(row) };
      const [existing] = await byRequestId.execute({ requestId: order.requestId });
      if (!existing) throw new Error(`order ${order.id} conflicted but its request cannot be read`);
      return { created: false, recorded: recordedOf(existing) };
    },

    async confirm(id, items) {
      return db.transaction(async (tx) => {
        const [row] = await tx
          .update(orders)
          .set({
            status: "confirmed",
            items: items.map((item) => ({
              sku: item.sku,
              quantity: String(item.quantity),
              unitPriceCents: String(item.unitPriceCents),
            })),
            totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0n),
            createTime: sql`now()`,
            updateTime: sql`now()`,
          })
          .where(and(eq(orders.id, id), eq(orders.status, "pending")))
          .returning();
        if (row) {
          await appendChanges(tx, schema, [
            { entityId: row.id, type: "created", data: toData(row), partition: row.userId },
          ]);
          return toOrder(row);
        }
        const [current] = await tx.select().from(orders).where(eq(orders.id, id));
        return current && visible(current.status) ? toOrder(current) : undefined;
      });
    },

    async abandon(id) {
      await db.delete(orders).where(and(eq(orders.id, id), eq(orders.status, "pending")));
    },

    async claimStale(olderThanMs, limit) {
      return db.transaction(async (tx) => {
        await tx.execute(sql`
          update ${orders} set status = 'compensating', update_time = now()
          where id in (
            select id from ${orders}
            where status = 'pending' and update_time < now() - make_interval(secs => ${olderThanMs / 1000})
            order by update_time limit ${limit}
            for update skip locked)`);
        const rows = await tx
          .select({ id: orders.id })
          .from(orders)
          .where(eq(orders.status, "compensating"))
          .limit(limit);
        return rows.map((row) => row.id);
      });
    },

    async removeCompensated(id) {
      await db.delete(orders).where(and(eq(orders.id, id), eq(orders.status, "compensating")));
    },

    async expireRequestIds(ttlMs) {
      const rows = await db
        .update(orders)
        .set({ requestId: null })
        .where(
          and(
            isNotNull(orders.requestId),
            inArray(orders.status, ["confirmed", "cancelled"]),
            lt(orders.createTime, sql`now() - make_interval(secs => ${ttlMs / 1000})`),
          ),
        )
        .returning({ id: orders.id });
      return rows.length;
    },

    async get(id) {
      const [row] = await byId.execute({ id });
      return row && toOrder(row);
    },

    async findByRequestId(requestId) {
      const [row] = await byRequestId.execute({ requestId });
      return row && recordedOf(row);
    },

    async list({ userId, status, cursor, limit }) {
      const matches = and(
        acknowledged,
        userId === undefined ? undefined : eq(orders.userId, userId),
        status === undefined ? undefined : eq(orders.status, status),
      );
      return db.transaction(async (tx) => {
        const rows = await tx
          .select()
          .from(orders)
          .where(and(matches, cursor === undefined ? undefined : lt(orders.seq, BigInt(cursor))))
          .orderBy(desc(orders.seq))
          .limit(limit + 1);
        const [counted] = await tx.select({ total: count() }).from(orders).where(matches);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          orders: page.map(toOrder),
          nextCursor: rows.length > limit && last ? String(last.seq) : undefined,
          revision: await revisionOf(tx, schema),
          totalSize: counted?.total ?? 0,
        };
      }, readOnly);
    },

    snapshotPage({ userId, after, limit, atLeast }) {
      return feed.readPage(`orders/${userId ?? ""}/${after ?? ""}/${limit}`, atLeast, () =>
        db.transaction(async (tx) => {
          const rows = await tx
            .select()
            .from(orders)
            .where(
              and(
                acknowledged,
                userId === undefined ? undefined : eq(orders.userId, userId),
                after === undefined ? undefined : gt(orders.id, after),
              ),
            )
            .orderBy(asc(orders.id))
            .limit(limit + 1);
          const revision = await revisionOf(tx, schema);
          return snapshotPageOf(rows, limit, revision, toOrder, (row) => row.id);
        }, readOnly),
      );
    },

    async *changesThrough({ userId, ...range }) {
      for await (const batch of feed.changesThrough({
        ...range,
        keyType: "uuid",
        partition: userId,
      })) {
        yield sharedBatch(batch);
      }
    },

    async snapshotOf(ids) {
      return db.transaction(async (tx) => {
        const rows =
          ids.length === 0
            ? []
            : await tx
                .select()
                .from(orders)
                .where(and(acknowledged, inArray(orders.id, [...ids])));
        return { orders: rows.map(toOrder), revision: await revisionOf(tx, schema) };
      }, readOnly);
    },

    async cancel(id) {
      return db.transaction(async (tx) => {
        const [row] = await tx
          .update(orders)
          .set({ status: "cancelled", version: sql`${orders.version} + 1`, updateTime: sql`now()` })
          .where(and(eq(orders.id, id), eq(orders.status, "confirmed")))
          .returning();
        if (!row) {
          const [current] = await tx.select().from(orders).where(eq(orders.id, id));
          if (!current || !visible(current.status)) throw new OrderNotFoundError(id);
          throw new OrderNotCancellableError(id, current.status);
        }
        await appendChanges(tx, schema, [
          { entityId: row.id, type: "updated", data: toData(row), partition: row.userId },
        ]);
        return toOrder(row);
      });
    },

    changes(after, signal, userId) {
      return mapStream(feed.watch({ after, signal, partition: userId }), sharedBatch);
    },
  };
}

function visible(status: Row["status"]): boolean {
  return status === "confirmed" || status === "cancelled";
}

function recordedOf(row: Row): RecordedRequest {
  return {
    id: row.id,
    state: row.status,
    order: visible(row.status) ? toOrder(row) : undefined,
    requestFingerprint: row.requestFingerprint,
  };
}

/** The order as stored in the change log: JSON, with bigints and dates as strings. */
interface OrderData {
  id: string;
  userId: string;
  items: { sku: string; quantity: string; unitPriceCents: string }[];
  totalCents: string;
  status: Row["status"];
  createTime: string;
  updateTime: string;
  version: string;
  requestId: string;
}

function toData(row: Row): OrderData {
  return {
    id: row.id,
    userId: row.userId,
    items: row.items,
    totalCents: String(row.totalCents),
    status: row.status,
    createTime: row.createTime.toISOString(),
    updateTime: row.updateTime.toISOString(),
    version: String(row.version),
    requestId: row.requestId ?? "",
  };
}

function fromData(data: OrderData): Order {
  return {
    id: data.id,
    userId: data.userId,
    items: data.items.map((item) => ({
      sku: item.sku,
      quantity: BigInt(item.quantity),
      unitPriceCents: BigInt(item.unitPriceCents),
    })),
    totalCents: BigInt(data.totalCents),
    status: data.status === "cancelled" ? "cancelled" : "confirmed",
    createTime: new Date(data.createTime),
    updateTime: new Date(data.updateTime),
    version: BigInt(data.version),
    requestId: data.requestId,
  };
}

function toEvent(record: ChangeRecord): OrderEvent {
  return {
    type: record.type,
    revision: BigInt(record.revision),
    order: fromData(record.data as OrderData),
  };
}

function toOrder(row: Row): Order {
  return fromData(toData(row));
}
