import { changeLogTable } from "@shop/mesh";
import { sql } from "drizzle-orm";
import { bigint, check, jsonb, pgSchema, text, timestamp } from "drizzle-orm/pg-core";

/** The inventory service owns this PostgreSQL schema and nothing outside it. */
export const inventorySchema = pgSchema("inventory");

export const reservationStatus = inventorySchema.enum("reservation_status", ["held", "released"]);

export const products = inventorySchema.table(
  "products",
  {
    sku: text("sku").primaryKey(),
    name: text("name").notNull(),
    priceCents: bigint("price_cents", { mode: "bigint" }).notNull(),
    stock: bigint("stock", { mode: "bigint" }).notNull(),
    reserved: bigint("reserved", { mode: "bigint" }).notNull().default(sql`0`),
    version: bigint("version", { mode: "bigint" }).notNull().default(sql`1`),
  },
  (table) => [
    check("products_stock_not_negative", sql`${table.stock} >= 0`),
    check("products_reserved_not_negative", sql`${table.reserved} >= 0`),
  ],
);

/** One row per order that ever reserved stock: the idempotency key of reserve and release. */
export const reservations = inventorySchema.table("reservations", {
  orderId: text("order_id").primaryKey(),
  status: reservationStatus("status").notNull(),
  // [{sku, quantity}] with quantities as strings, sorted by sku.
  items: jsonb("items").$type<{ sku: string; quantity: string }[]>().notNull(),
  createTime: timestamp("create_time", { withTimezone: true }).notNull().defaultNow(),
  releaseTime: timestamp("release_time", { withTimezone: true }),
});

export const changes = changeLogTable(inventorySchema);

/** Every table of the service, for drizzle's relational queries and drizzle-kit. */
export const tables = { products, reservations, changes };
