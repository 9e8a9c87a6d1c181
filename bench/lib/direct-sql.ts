// The database limit of CreateOrder: the statements the three services issue for one order,
// captured from PostgreSQL's statement log (the change log's append is the runtime's own
// `appendStatement`) and issued here directly with the same driver (postgres.js, one pool of 10
// per service as the services have, statements prepared as the driver does by default), in the
// same order and transactions, at the same concurrency. JSON parameters go as objects, serialised
// by the driver (drizzle serialises them itself and sends text: the same bytes reach the server).
// Run in a child process by bench/scenarios/create-order.ts; prints one JSON line with the
// closed-loop result.
import { createHash, randomUUID } from "node:crypto";
import { appendStatement } from "@shop/mesh";
import postgres from "postgres";
import { closedLoop } from "./closed-loop.ts";
import { productData } from "./write-transactions.ts";

interface Options {
  databaseUrl: string;
  users: string[];
  skus: string[];
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
}

const options = JSON.parse(process.argv[2] ?? "{}") as Options;
const pool = (name: string) =>
  postgres(options.databaseUrl, {
    max: 10,
    onnotice: () => {},
    connection: { application_name: `bench-direct-${name}` },
    types: { bigint: postgres.BigInt },
  });
const usersSql = pool("users");
const ordersSql = pool("orders");
const inventorySql = pool("inventory");

const orderColumns = `"id", "seq", "user_id", "items", "total_cents", "status", "request_id", "request_fingerprint", "create_time", "update_time", "version"`;
const findByRequestId = `select ${orderColumns} from "orders"."orders" where "orders"."orders"."request_id" = $1`;
const getUser = `select "id", "seq", "name", "email", "status", "create_time", "update_time", "version" from "users"."users" where "users"."users"."id" = $1`;
const beginOrder = `insert into "orders"."orders" ("id", "seq", "user_id", "items", "total_cents", "status", "request_id", "request_fingerprint", "create_time", "update_time", "version") values ($1, default, $2, $3, $4, $5, $6, $7, default, default, default) on conflict do nothing returning ${orderColumns}`;
const lock = `select pg_advisory_xact_lock(hashtext($1))`;
const findReservation = `select "order_id", "status", "items", "create_time", "release_time" from "inventory"."reservations" where "inventory"."reservations"."order_id" = $1`;
const insertReservation = `insert into "inventory"."reservations" ("order_id", "status", "items", "create_time", "release_time") values ($1, $2, $3, default, default)`;
const reserveProduct = `update "inventory"."products" set "stock" = "inventory"."products"."stock" + $1, "reserved" = "inventory"."products"."reserved" - $2, "version" = "inventory"."products"."version" + 1 where "inventory"."products"."sku" = $3 and "inventory"."products"."stock" >= $4 returning "sku", "name", "price_cents", "stock", "reserved", "version"`;
const confirmOrder = `update "orders"."orders" set "items" = $1, "total_cents" = $2, "status" = $3, "create_time" = now(), "update_time" = now() where ("orders"."orders"."id" = $4 and "orders"."orders"."status" = $5) returning ${orderColumns}`;
const appendInventoryChange = appendStatement("inventory");
const appendOrderChange = appendStatement("orders");

type Row = Record<string, unknown>;

async function placeOrder(n: number): Promise<void> {
  const userId = options.users[n % options.users.length] as string;
  const sku = options.skus[n % options.skus.length] as string;
  const requestId = randomUUID();
  const fingerprint = createHash("sha256")
    .update(JSON.stringify([userId, [[sku, "1"]]]))
    .digest("hex");
  const [recorded] = await ordersSql.unsafe<Row[]>(findByRequestId, [requestId]);
  if (recorded) throw new Error("request id already recorded");
  const [user] = await usersSql.unsafe<Row[]>(getUser, [userId]);
  if (user?.status !== "active") throw new Error(`user ${userId} cannot order`);
  const id = randomUUID();
  const [pending] = await ordersSql.unsafe<Row[]>(beginOrder, [
    id,
    userId,
    [{ sku, quantity: "1", unitPriceCents: "0" }],
    "0",
    "pending",
    requestId,
    fingerprint,
  ]);
  if (!pending) throw new Error("order conflicted");
  const product = await inventorySql.begin(async (tx) => {
    await tx.unsafe(lock, [`reserve:${id}`]);
    const [existing] = await tx.unsafe<Row[]>(findReservation, [id]);
    if (existing) throw new Error("reservation exists");
    await tx.unsafe(insertReservation, [id, "held", [{ sku, quantity: "1" }]]);
    const [row] = await tx.unsafe<Row[]>(reserveProduct, ["-1", "-1", sku, "1"]);
    if (!row) throw new Error(`${sku} is out of stock`);
    await tx.unsafe(lock, ["changes:inventory"]);
    await tx.unsafe(appendInventoryChange, [
      [sku],
      ["updated"],
      [JSON.stringify(productData(row))],
      [null],
      "inventory_changes",
    ]);
    return row;
  });
  const price = String(product.price_cents);
  await ordersSql.begin(async (tx) => {
    const [row] = await tx.unsafe<Row[]>(confirmOrder, [
      [{ sku, quantity: "1", unitPriceCents: price }],
      price,
      "confirmed",
      id,
      "pending",
    ]);
    if (!row) throw new Error("order vanished");
    await tx.unsafe(lock, ["changes:orders"]);
    const data = {
      id,
      userId,
      items: row.items,
      totalCents: price,
      status: "confirmed",
      createTime: (row.create_time as Date).toISOString(),
      updateTime: (row.update_time as Date).toISOString(),
      version: String(row.version),
      requestId,
    };
    await tx.unsafe(appendOrderChange, [
      [id],
      ["created"],
      [JSON.stringify(data)],
      [userId],
      "orders_changes",
    ]);
  });
}

const cpuBefore = process.cpuUsage();
const result = await closedLoop({
  concurrency: options.concurrency,
  seconds: options.seconds,
  warmupSeconds: options.warmupSeconds,
  call: placeOrder,
});
const cpu = process.cpuUsage(cpuBefore);
await Promise.all([usersSql.end(), ordersSql.end(), inventorySql.end()]);
process.stdout.write(
  `${JSON.stringify({ ...result, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`,
);
