// The transaction the users service commits for CreateUser and the inventory service for
// AdjustStock, as PostgreSQL receives them, issued directly with the services' driver
// (postgres.js): the row's statement as drizzle builds it (unprepared, as drizzle sends it), then
// the change log's lock and append through the runtime's own appendChangesOn, in one transaction.
// The write-ceiling scenario's direct-SQL contender (bench/lib/direct-write.ts) runs them; the
// scenario adds the products they adjust. For the bench only, the same transaction can also be
// sent with the append statement minus its pg_notify, to measure what the notification costs.
import { appendChangesOn, appendStatement } from "@shop/mesh";
import type { Sql, TransactionSql } from "postgres";

/** A service whose writes the write-ceiling scenario measures. */
export type WriteService = "users" | "inventory";

/** The change-log append as the services send it, or without its pg_notify (bench only). */
export type AppendVariant = "as-the-services" | "without-notify";

type Row = Record<string, unknown>;

const userColumns = `"id", "seq", "name", "email", "status", "create_time", "update_time", "version"`;
const insertUser = `insert into "users"."users" (${userColumns}) values (default, default, $1, $2, default, default, default, default) returning ${userColumns}`;
const productColumns = `"sku", "name", "price_cents", "stock", "reserved", "version"`;
const adjustProduct = `update "inventory"."products" set "stock" = "inventory"."products"."stock" + $1, "version" = "inventory"."products"."version" + 1 where "inventory"."products"."sku" = $2 and "inventory"."products"."stock" + $3 >= 0 returning ${productColumns}`;

// The notification's part of appendStatement's text, which ends with it. Cut from the runtime's
// own statement rather than copied, so that the variant differs from what the services send by
// the notification alone; its last parameter, the channel, goes with it.
const notification = /,\s*pg_notify\(\$5, [^\n]*\)\s*$/;

/** appendStatement(schema) without its pg_notify, which takes parameters $1 to $4 only. */
function appendStatementWithoutNotify(schema: WriteService): string {
  const statement = appendStatement(schema);
  if (!notification.test(statement)) {
    throw new Error("appendStatement no longer ends with its pg_notify; update the bench's cut");
  }
  return statement.replace(notification, "");
}

/**
 * `tx` for appendChangesOn, with its append statement swapped for the one without pg_notify: the
 * lock, the pipelining and the parameters stay the runtime's own (less the channel, $5, which only
 * pg_notify read), so nothing else differs.
 */
function withoutNotify(tx: TransactionSql, schema: WriteService): Pick<Sql, "unsafe"> {
  const append = appendStatement(schema);
  const silent = appendStatementWithoutNotify(schema);
  const unsafe: Sql["unsafe"] = (query, parameters, options) =>
    query === append
      ? tx.unsafe(silent, parameters?.slice(0, 4), options)
      : tx.unsafe(query, parameters, options);
  return { unsafe };
}

/** Records changes of `schema` with the runtime's own appendChangesOn, as the services do. */
async function appendChanges(
  tx: TransactionSql,
  schema: WriteService,
  type: "created" | "updated",
  changes: readonly { id: string; data: unknown }[],
  variant: AppendVariant = "as-the-services",
): Promise<void> {
  await appendChangesOn(
    variant === "without-notify" ? withoutNotify(tx, schema) : tx,
    schema,
    changes.map((change) => ({ entityId: change.id, type, data: change.data })),
  );
}

/** A product row as the inventory service records it in its change log. */
export function productData(row: Record<string, unknown>) {
  return {
    sku: row.sku,
    name: row.name,
    priceCents: String(row.price_cents),
    stock: String(row.stock),
    reserved: String(row.reserved),
    version: String(row.version),
  };
}

/**
 * Returns one write of `service` as its own transaction: a new user (email `<prefix>-<n>@...`),
 * or one unit more of `skus[worker]`, so that no two workers update the same row.
 */
export function directWrite(
  sql: Sql,
  service: WriteService,
  options: { emailPrefix: string; skus: readonly string[]; append: AppendVariant },
): (n: number, worker: number) => Promise<void> {
  if (service === "users") {
    return async (n) => {
      await sql.begin(async (tx) => {
        const [row] = await tx.unsafe<Row[]>(insertUser, [
          `Write Ceiling ${n}`,
          `${options.emailPrefix}-${n}@example.com`,
        ]);
        if (!row) throw new Error("insert returned no user");
        const data = {
          id: row.id,
          name: row.name,
          email: row.email,
          status: row.status,
          createTime: (row.create_time as Date).toISOString(),
          updateTime: (row.update_time as Date).toISOString(),
          version: String(row.version),
        };
        await appendChanges(tx, "users", "created", [{ id: String(row.id), data }], options.append);
      });
    };
  }
  return async (_n, worker) => {
    const sku = options.skus[worker % options.skus.length] as string;
    await sql.begin(async (tx) => {
      const [row] = await tx.unsafe<Row[]>(adjustProduct, ["1", sku, "1"]);
      if (!row) throw new Error(`${sku} not found`);
      const changes = [{ id: sku, data: productData(row) }];
      await appendChanges(tx, "inventory", "updated", changes, options.append);
    });
  };
}

/**
 * Adds `count` products for the scenario to adjust, one per worker (the demo catalog's 8 would
 * have workers wait for each other's row locks, which is not what is measured), with their
 * creation in the change log as the catalog's seed records it. Returns their skus.
 */
export async function addBenchProducts(sql: Sql, count: number): Promise<string[]> {
  const skus = Array.from({ length: count }, (_, i) => `WRITE-BENCH-${String(i).padStart(3, "0")}`);
  await sql.begin(async (tx) => {
    const rows = await tx<Row[]>`
      insert into inventory.products ${tx(
        skus.map((sku) => ({
          sku,
          name: `Write bench ${sku}`,
          price_cents: 100,
          stock: 1_000_000,
        })),
      )}
      on conflict do nothing
      returning sku, name, price_cents, stock, reserved, version`;
    if (rows.length === 0) return;
    await appendChanges(
      tx,
      "inventory",
      "created",
      rows.map((row) => ({ id: String(row.sku), data: productData(row) })),
    );
  });
  return skus;
}
