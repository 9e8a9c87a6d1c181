import { changeLogTable } from "@shop/mesh";
import { sql } from "drizzle-orm";
import {
  bigint,
  bigserial,
  index,
  pgSchema,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

/** The users service owns this PostgreSQL schema and nothing outside it. */
export const usersSchema = pgSchema("users");

export const userStatus = usersSchema.enum("user_status", ["active", "suspended"]);

export const users = usersSchema.table(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    // Creation order for paging; ids are random.
    seq: bigserial("seq", { mode: "bigint" }).notNull().unique(),
    name: text("name").notNull(),
    email: text("email").notNull(),
    status: userStatus("status").notNull().default("active"),
    createTime: timestamp("create_time", { withTimezone: true }).notNull().defaultNow(),
    updateTime: timestamp("update_time", { withTimezone: true }).notNull().defaultNow(),
    version: bigint("version", { mode: "bigint" }).notNull().default(sql`1`),
  },
  (table) => [
    uniqueIndex("users_email_lower_key").on(sql`lower(${table.email})`),
    // ListUsers' query is a case-insensitive substring of the name or the email: trigram indexes
    // answer its ILIKE without reading every user (for a query of three characters or more).
    index("users_name_trgm_idx").using("gin", table.name.op("gin_trgm_ops")),
    index("users_email_trgm_idx").using("gin", table.email.op("gin_trgm_ops")),
  ],
);

export const changes = changeLogTable(usersSchema);

/** Every table of the service, for drizzle's relational queries and drizzle-kit. */
export const tables = { users, changes };
