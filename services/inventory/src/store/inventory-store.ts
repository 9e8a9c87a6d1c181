import {
  appendChanges,
  type ChangeFeed,
  type ChangeRecord,
  type Database,
  lockTransaction,
  revisionOf,
  type WatchBatch,
} from "@shop/mesh";
import { convertBatchesOnce, convertOnce, mapStream, snapshotPageOf } from "@shop/mesh/watch";
import { asc, count, eq, gt, inArray, sql } from "drizzle-orm";
import { inventoryContractRules } from "../contract-rules.ts";
import {
  InsufficientStockError,
  ProductNotFoundError,
  ReservationConflictError,
  ReservationReleasedError,
} from "../domain/errors.ts";
import type {
  Inventory,
  NewProduct,
  Product,
  ProductEvent,
  Reservation,
  StockItem,
} from "../domain/product.ts";
import { products, reservations, type tables } from "./schema.ts";

type Row = typeof products.$inferSelect;
type Tx = Parameters<Parameters<Database<typeof tables>["db"]["transaction"]>[0]>[0];

/** The catalog, stock and reservations over PostgreSQL. */
export function createInventoryStore(
  database: Database<typeof tables>,
  feed: ChangeFeed,
): Inventory {
  const { db, schema } = database;
  const sharedEvent = convertOnce(toEvent);
  // Watches at the same place get the same batch from the feed, and so the same batch of events.
  const sharedBatch = convertBatchesOnce((batch: WatchBatch) => batch.records, sharedEvent);

  /** Adds `delta` to stock and subtracts it from reserved (or the reverse), recording the change. */
  const moveStock = async (
    tx: Tx,
    items: readonly StockItem[],
    direction: "reserve" | "release",
  ) => {
    const updated: Row[] = [];
    for (const item of items) {
      const toStock = direction === "reserve" ? -item.quantity : item.quantity;
      const [row] = await tx
        .update(products)
        .set({
          stock: sql`${products.stock} + ${toStock}`,
          reserved: sql`${products.reserved} - ${toStock}`,
          version: sql`${products.version} + 1`,
        })
        .where(
          direction === "reserve"
            ? sql`${products.sku} = ${item.sku} and ${products.stock} >= ${item.quantity}`
            : eq(products.sku, item.sku),
        )
        .returning();
      if (!row) {
        const [current] = await tx.select().from(products).where(eq(products.sku, item.sku));
        if (!current) throw new ProductNotFoundError(item.sku);
        throw new InsufficientStockError(item.sku, item.quantity, current.stock);
      }
      updated.push(row);
    }
    await appendChanges(
      tx,
      schema,
      updated.map((row) => ({ entityId: row.sku, type: "updated", data: toData(row) })),
    );
    return updated.map(toProduct);
  };

  return {
    rules: inventoryContractRules,

    async list({ cursor, limit }) {
      return db.transaction(
        async (tx) => {
          const rows = await tx
            .select()
            .from(products)
            .where(cursor === undefined ? undefined : gt(products.sku, cursor))
            .orderBy(asc(products.sku))
            .limit(limit + 1);
          const page = rows.slice(0, limit);
          const last = page.at(-1);
          return {
            products: page.map(toProduct),
            nextCursor: rows.length > limit && last ? last.sku : undefined,
            revision: await revisionOf(tx, schema),
          };
        },
        { isolationLevel: "repeatable read", accessMode: "read only" },
      );
    },

    async get(sku) {
      const [row] = await db.select().from(products).where(eq(products.sku, sku));
      return row && toProduct(row);
    },

    snapshotPage({ after, limit, atLeast }) {
      return feed.readPage(`products/${after ?? ""}/${limit}`, atLeast, () =>
        db.transaction(
          async (tx) => {
            const rows = await tx
              .select()
              .from(products)
              .where(after === undefined ? undefined : gt(products.sku, after))
              .orderBy(asc(products.sku))
              .limit(limit + 1);
            const revision = await revisionOf(tx, schema);
            return snapshotPageOf(rows, limit, revision, toProduct, (row) => row.sku);
          },
          { isolationLevel: "repeatable read", accessMode: "read only" },
        ),
      );
    },

    async *changesThrough(range) {
      for await (const batch of feed.changesThrough({ ...range, keyType: "text" })) {
        yield sharedBatch(batch);
      }
    },

    async adjust(sku, delta) {
      return db.transaction(async (tx) => {
        const [row] = await tx
          .update(products)
          .set({ stock: sql`${products.stock} + ${delta}`, version: sql`${products.version} + 1` })
          .where(sql`${products.sku} = ${sku} and ${products.stock} + ${delta} >= 0`)
          .returning();
        if (!row) {
          const [current] = await tx.select().from(products).where(eq(products.sku, sku));
          if (!current) throw new ProductNotFoundError(sku);
          throw new InsufficientStockError(sku, -delta, current.stock);
        }
        await appendChanges(tx, schema, [
          { entityId: row.sku, type: "updated", data: toData(row) },
        ]);
        return toProduct(row);
      });
    },

    async reserve(orderId, items) {
      return db.transaction(async (tx) => {
        // Concurrent reservations for one order wait for each other, so that exactly one holds.
        await lockTransaction(tx, `reserve:${orderId}`);
        const [existing] = await tx
          .select()
          .from(reservations)
          .where(eq(reservations.orderId, orderId));
        if (existing) {
          const held = toReservation(existing);
          if (held.status === "released") {
            throw new ReservationReleasedError(
              `the reservation of order ${orderId} was released; it cannot hold stock again`,
            );
          }
          if (!sameItems(held.items, items)) {
            throw new ReservationConflictError(
              `order ${orderId} already holds a reservation with other items`,
            );
          }
          const current = await tx
            .select()
            .from(products)
            .where(
              inArray(
                products.sku,
                held.items.map((item) => item.sku),
              ),
            );
          const bySku = new Map(current.map((row) => [row.sku, toProduct(row)]));
          return {
            reservation: held,
            products: held.items.flatMap((item) => bySku.get(item.sku) ?? []),
          };
        }
        await tx.insert(reservations).values({
          orderId,
          status: "held",
          items: items.map((item) => ({ sku: item.sku, quantity: String(item.quantity) })),
        });
        const updated = await moveStock(tx, items, "reserve");
        return {
          reservation: { orderId, items: [...items], status: "held" as const },
          products: updated,
        };
      });
    },

    async release(orderId) {
      return db.transaction(async (tx) => {
        // Serialised with reserve for the same order. A release that finds nothing leaves a
        // released record: a reserve still in flight for that order (a saga the sweeper rolled
        // back) is then refused instead of holding stock for an order that no longer exists.
        await lockTransaction(tx, `reserve:${orderId}`);
        const [existing] = await tx
          .select()
          .from(reservations)
          .where(eq(reservations.orderId, orderId))
          .for("update");
        if (!existing) {
          await tx
            .insert(reservations)
            .values({ orderId, status: "released", items: [], releaseTime: sql`now()` });
          return undefined;
        }
        const held = toReservation(existing);
        if (held.status === "released") return held;
        await tx
          .update(reservations)
          .set({ status: "released", releaseTime: sql`now()` })
          .where(eq(reservations.orderId, orderId));
        await moveStock(tx, held.items, "release");
        return { ...held, status: "released" as const };
      });
    },

    async seed(catalog: readonly NewProduct[]) {
      await db.transaction(async (tx) => {
        await lockTransaction(tx, `seed:${schema}`);
        const [existing] = await tx.select({ n: count() }).from(products);
        if ((existing?.n ?? 0) > 0 || catalog.length === 0) return;
        const rows = await tx
          .insert(products)
          .values([...catalog])
          .returning();
        await appendChanges(
          tx,
          schema,
          rows.map((row) => ({ entityId: row.sku, type: "created", data: toData(row) })),
        );
      });
    },

    changes(after, signal) {
      return mapStream(feed.watch({ after, signal }), sharedBatch);
    },
  };
}

function sameItems(a: readonly StockItem[], b: readonly StockItem[]): boolean {
  return (
    a.length === b.length &&
    a.every((item, i) => item.sku === b[i]?.sku && item.quantity === b[i]?.quantity)
  );
}

function toReservation(row: typeof reservations.$inferSelect): Reservation {
  return {
    orderId: row.orderId,
    status: row.status,
    items: row.items.map((item) => ({ sku: item.sku, quantity: BigInt(item.quantity) })),
  };
}

/** The product as stored in the change log: JSON, with bigints as strings. */
type ProductData = Record<keyof Product, string>;

function toData(row: Row): ProductData {
  return {
    sku: row.sku,
    name: row.name,
    priceCents: String(row.priceCents),
    stock: String(row.stock),
    reserved: String(row.reserved),
    version: String(row.version),
  };
}

function toEvent(record: ChangeRecord): ProductEvent {
  const data = record.data as ProductData;
  return {
    type: record.type,
    revision: BigInt(record.revision),
    product: {
      sku: data.sku,
      name: data.name,
      priceCents: BigInt(data.priceCents),
      stock: BigInt(data.stock),
      reserved: BigInt(data.reserved),
      version: BigInt(data.version),
    },
  };
}

function toProduct(row: Row): Product {
  return {
    sku: row.sku,
    name: row.name,
    priceCents: row.priceCents,
    stock: row.stock,
    reserved: row.reserved,
    version: row.version,
  };
}
