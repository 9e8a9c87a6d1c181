import { changeLogTable } from "@shop/mesh";
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  jsonb,
  pgSchema,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";

/** The orders service owns this PostgreSQL schema and nothing outside it. */
export const ordersSchema = pgSchema("orders");

// pending: written before the stock is reserved, invisible to readers; compensating: being rolled
// back by the sweeper. Only confirmed and cancelled orders were ever acknowledged to a client.
export const orderStatus = ordersSchema.enum("order_status", [
  "confirmed",
  "cancelled",
  "pending",
  "compensating",
]);

export const orders = ordersSchema.table(
  "orders",
  {
    id: uuid("id").primaryKey(),
    // Creation order for paging; ids are random or derived from request ids.
    seq: bigserial("seq", { mode: "bigint" }).notNull().unique(),
    userId: uuid("user_id").notNull(),
    // [{sku, quantity, unitPriceCents}] with numbers as strings.
    items: jsonb("items")
      .$type<{ sku: string; quantity: string; unitPriceCents: string }[]>()
      .notNull(),
    totalCents: bigint("total_cents", { mode: "bigint" }).notNull(),
    status: orderStatus("status").notNull().default("confirmed"),
    // Null when the client sent no request id; unique otherwise (AIP-155).
    requestId: text("request_id").unique(),
    // Digest of the request's content, to refuse a request id reused for another order.
    requestFingerprint: text("request_fingerprint").notNull(),
    createTime: timestamp("create_time", { withTimezone: true }).notNull().defaultNow(),
    updateTime: timestamp("update_time", { withTimezone: true }).notNull().defaultNow(),
    version: bigint("version", { mode: "bigint" }).notNull().default(sql`1`),
  },
  (table) => [
    index("orders_user_seq_idx").on(table.userId, table.seq),
    index("orders_status_update_time_idx").on(table.status, table.updateTime),
  ],
);

export const changes = changeLogTable(ordersSchema);

/** Every table of the service, for drizzle's relational queries and drizzle-kit. */
export const tables = { orders, changes };
