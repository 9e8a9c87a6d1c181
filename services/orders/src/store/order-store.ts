import {
  appendChanges,
  type ChangeFeed,
  type ChangeRecord,
  type Database,
  revisionOf,
} from "@shop/mesh";
import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { OrderNotCancellableError, OrderNotFoundError } from "../domain/errors.ts";
import type { NewOrder, Order, OrderEvent, OrderRepository } from "../domain/order.ts";
import { orders, type tables } from "./schema.ts";

type Row = typeof orders.$inferSelect;

/** The orders table and change log over PostgreSQL. */
export function createOrderStore(
  database: Database<typeof tables>,
  feed: ChangeFeed,
): OrderRepository {
  const { db, schema } = database;
  const readOnly = { isolationLevel: "repeatable read", accessMode: "read only" } as const;

  const stored = (row: Row) => ({
    order: toOrder(row),
    requestFingerprint: row.requestFingerprint,
  });

  return {
    async insert(order: NewOrder) {
      return db.transaction(async (tx) => {
        const [row] = await tx
          .insert(orders)
          .values({
            id: order.id,
            userId: order.userId,
            items: order.items.map((item) => ({
              sku: item.sku,
              quantity: String(item.quantity),
              unitPriceCents: String(item.unitPriceCents),
            })),
            totalCents: order.totalCents,
            requestId: order.requestId === "" ? null : order.requestId,
            requestFingerprint: order.requestFingerprint,
          })
          .onConflictDoNothing()
          .returning();
        if (row) {
          await appendChanges(tx, schema, [
            { entityId: row.id, type: "created", data: toData(row), partition: row.userId },
          ]);
          return stored(row);
        }
        // A repeat of the same request (same id, or same request id) got here first.
        const [existing] = await tx
          .select()
          .from(orders)
          .where(
            order.requestId === ""
              ? eq(orders.id, order.id)
              : eq(orders.requestId, order.requestId),
          );
        if (!existing) throw new Error(`order ${order.id} conflicted but cannot be read`);
        return stored(existing);
      });
    },

    async get(id) {
      const [row] = await db.select().from(orders).where(eq(orders.id, id));
      return row && toOrder(row);
    },

    async findByRequestId(requestId) {
      const [row] = await db.select().from(orders).where(eq(orders.requestId, requestId));
      return row && stored(row);
    },

    async list({ userId, cursor, limit }) {
      return db.transaction(async (tx) => {
        const rows = await tx
          .select()
          .from(orders)
          .where(
            and(
              userId === undefined ? undefined : eq(orders.userId, userId),
              cursor === undefined ? undefined : lt(orders.seq, BigInt(cursor)),
            ),
          )
          .orderBy(desc(orders.seq))
          .limit(limit + 1);
        const page = rows.slice(0, limit);
        const last = page.at(-1);
        return {
          orders: page.map(toOrder),
          nextCursor: rows.length > limit && last ? String(last.seq) : undefined,
          revision: await revisionOf(tx, schema),
        };
      }, readOnly);
    },

    async snapshot(userId) {
      return db.transaction(async (tx) => {
        const rows = await tx
          .select()
          .from(orders)
          .where(userId === undefined ? undefined : eq(orders.userId, userId))
          .orderBy(desc(orders.seq));
        return { orders: rows.map(toOrder), revision: await revisionOf(tx, schema) };
      }, readOnly);
    },

    async snapshotOf(ids) {
      return db.transaction(async (tx) => {
        const rows =
          ids.length === 0
            ? []
            : await tx
                .select()
                .from(orders)
                .where(inArray(orders.id, [...ids]));
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
          if (!current) throw new OrderNotFoundError(id);
          throw new OrderNotCancellableError(id, current.status);
        }
        await appendChanges(tx, schema, [
          { entityId: row.id, type: "updated", data: toData(row), partition: row.userId },
        ]);
        return toOrder(row);
      });
    },

    async *changes(after, signal, userId) {
      for await (const batch of feed.watch({ after, signal, partition: userId })) {
        yield { events: batch.records.map(toEvent), revision: batch.revision };
      }
    },
  };
}

/** The order as stored in the change log: JSON, with bigints and dates as strings. */
interface OrderData {
  id: string;
  userId: string;
  items: { sku: string; quantity: string; unitPriceCents: string }[];
  totalCents: string;
  status: Order["status"];
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
    status: data.status,
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
