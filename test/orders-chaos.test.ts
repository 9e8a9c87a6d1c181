// Orders lose nothing: 1,000 orders at concurrency 32 while the orders (then the inventory)
// service is killed with SIGKILL five times and restarted, each client retrying its order with the
// same request_id until it gets a definite answer. Afterwards, once the sweeper has rolled back
// what the crashes left half done: every acknowledged order exists exactly once, no order exists
// that was not acknowledged, and for every product the initial stock equals what is available
// plus what live orders hold. Also: 100 concurrent updates of one user with one expected version.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@shop/testing";
import postgres, { type Sql } from "postgres";

const definite = new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.NotFound]);

interface Shop {
  database: TestDatabase;
  sql: Sql;
  users: ServiceProcess;
  inventory: ServiceProcess;
  orders: ServiceProcess;
}

async function startShop(): Promise<Shop> {
  const database = await createTestDatabase();
  const common = {
    DATABASE_URL: database.url,
    PENDING_TIMEOUT_MS: "1000",
    SWEEP_INTERVAL_MS: "200",
  };
  const users = await startServiceProcess("users", common);
  const inventory = await startServiceProcess("inventory", common);
  const orders = await startServiceProcess("orders", {
    ...common,
    USERS_URL: users.url,
    INVENTORY_URL: inventory.url,
    UPSTREAM_TIMEOUT_MS: "1000",
  });
  const sql = postgres(database.url, { max: 2, onnotice: () => {} });
  return { database, sql, users, inventory, orders };
}

async function stopShop(shop: Shop): Promise<void> {
  await Promise.all([shop.orders.kill(), shop.inventory.kill(), shop.users.kill()]);
  await shop.sql.end();
  await shop.database.drop();
}

/**
 * Places `count` orders at `concurrency`, killing `victim` with SIGKILL `kills` times meanwhile.
 * Returns the acknowledged orders by request id and the stock each product started with.
 */
async function placeOrdersUnderFire(shop: Shop, victim: ServiceProcess, count: number) {
  const grpc = (url: string) => createGrpcTransport({ baseUrl: url });
  const users = createClient(UserService, grpc(shop.users.url));
  const inventory = createClient(InventoryService, grpc(shop.inventory.url));
  const orders = createClient(OrderService, grpc(shop.orders.url));
  const customers = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      users.createUser({ name: `C${i}`, email: `c${i}-${crypto.randomUUID()}@example.com` }),
    ),
  );
  const { products } = await inventory.listProducts({});
  for (const product of products) await inventory.adjustStock({ sku: product.sku, delta: 10_000n });
  const initial = new Map(
    (await inventory.listProducts({})).products.map((p) => [p.sku, p.stock + p.reserved]),
  );

  const acknowledged = new Map<string, { id: string; sku: string; quantity: bigint }>();
  const refused: string[] = [];
  let next = 0;
  let attempts = 0;
  let failed = false;
  const worker = async () => {
    for (let i = next++; i < count && !failed; i = next++) {
      const requestId = crypto.randomUUID();
      const sku = products[i % products.length]?.sku ?? "";
      const quantity = BigInt((i % 3) + 1);
      const userId = customers[i % customers.length]?.user?.id ?? "";
      const giveUpAt = Date.now() + 60_000;
      for (let attempt = 0; ; attempt++) {
        attempts++;
        try {
          const { order } = await orders.createOrder(
            { userId, items: [{ sku, quantity }], requestId },
            { timeoutMs: 3_000 },
          );
          acknowledged.set(requestId, { id: order?.id ?? "", sku, quantity });
          break;
        } catch (error) {
          const code = ConnectError.from(error).code;
          if (definite.has(code)) {
            refused.push(`${requestId}: ${ConnectError.from(error).message}`);
            break;
          }
          if (Date.now() > giveUpAt) {
            failed = true;
            assert.fail(`order ${requestId} never got a definite answer; last: ${String(error)}`);
          }
          // As a real client would: exponential backoff with jitter, capped at half a second.
          await sleep(Math.random() * Math.min(500, 20 * 2 ** attempt));
        }
      }
    }
  };
  const killer = (async () => {
    for (let kill = 0; kill < 5; kill++) {
      await sleep(400 + Math.random() * 600);
      await victim.kill("SIGKILL");
      await victim.restart();
    }
  })();
  await Promise.all([...Array.from({ length: 32 }, worker), killer]);
  return { acknowledged, refused, initial, attempts };
}

/** Waits until no order is half done (pending or being rolled back). */
async function waitForCompensation(sql: Sql): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from orders.orders where status in ('pending', 'compensating')`;
    if (row?.n === 0) return;
    assert.ok(Date.now() < deadline, `${row?.n} orders still half done after 30 s`);
    await sleep(200);
  }
}

/** Every order acknowledged by any run of this file, by request id. */
const everAcknowledged = new Map<string, { id: string; sku: string; quantity: bigint }>();

async function assertInvariants(shop: Shop, run: Awaited<ReturnType<typeof placeOrdersUnderFire>>) {
  for (const [requestId, ack] of run.acknowledged) everAcknowledged.set(requestId, ack);
  await waitForCompensation(shop.sql);
  const stored = await shop.sql<{ id: string; request_id: string; status: string }[]>`
    select id, request_id, status from orders.orders`;
  const byRequest = new Map(stored.map((row) => [row.request_id, row]));
  assert.equal(byRequest.size, stored.length, "no request id made two orders");
  for (const [requestId, ack] of everAcknowledged) {
    const row = byRequest.get(requestId);
    assert.ok(row, `acknowledged order ${ack.id} (${requestId}) exists`);
    assert.equal(row.id, ack.id, "and it is the order that was acknowledged");
    assert.equal(row.status, "confirmed");
  }
  assert.equal(stored.length, everAcknowledged.size, "no order exists that was not acknowledged");

  const held = new Map<string, bigint>();
  for (const ack of everAcknowledged.values()) {
    held.set(ack.sku, (held.get(ack.sku) ?? 0n) + ack.quantity);
  }
  const products = await shop.sql<{ sku: string; stock: string; reserved: string }[]>`
    select sku, stock::text, reserved::text from inventory.products`;
  for (const product of products) {
    const live = held.get(product.sku) ?? 0n;
    assert.equal(BigInt(product.reserved), live, `${product.sku}: reserved = held by live orders`);
    assert.equal(
      BigInt(product.stock) + BigInt(product.reserved),
      run.initial.get(product.sku),
      `${product.sku}: initial stock = available + reserved by live orders`,
    );
  }
  const [orphans] = await shop.sql<{ n: number }[]>`
    select count(*)::int as n from inventory.reservations r
    where r.status = 'held' and not exists (select 1 from orders.orders o where o.id::text = r.order_id)`;
  assert.equal(orphans?.n, 0, "no stock is held for an order that does not exist");
}

let shop: Shop;
before(async () => {
  shop = await startShop();
});
after(async () => {
  await stopShop(shop);
});

test("1,000 orders while the orders service is killed 5 times: nothing lost, nothing doubled", async () => {
  const run = await placeOrdersUnderFire(shop, shop.orders, 1_000);
  assert.equal(run.refused.length, 0, `refused: ${run.refused.slice(0, 3).join("; ")}`);
  assert.equal(run.acknowledged.size, 1_000);
  await assertInvariants(shop, run);
});

test("1,000 orders while the inventory service is killed 5 times: no stock held for nothing", async () => {
  const run = await placeOrdersUnderFire(shop, shop.inventory, 1_000);
  assert.equal(run.refused.length, 0, `refused: ${run.refused.slice(0, 3).join("; ")}`);
  await assertInvariants(shop, run);
});

test("100 concurrent updates with one expected version: exactly one wins, 99 are aborted", async () => {
  const users = createClient(UserService, createGrpcTransport({ baseUrl: shop.users.url }));
  const { user } = await users.createUser({
    name: "Contended",
    email: `x-${crypto.randomUUID()}@example.com`,
  });
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, (_, i) =>
      users.updateUser({ id: user?.id ?? "", version: user?.version ?? 0n, name: `Name ${i}` }),
    ),
  );
  const won = results.filter((result) => result.status === "fulfilled");
  const aborted = results.filter(
    (result) =>
      result.status === "rejected" && ConnectError.from(result.reason).code === Code.Aborted,
  );
  assert.equal(won.length, 1);
  assert.equal(aborted.length, 99);
  assert.match(
    ConnectError.from((aborted[0] as PromiseRejectedResult).reason).rawMessage,
    /version 2/,
  );
  const { user: final } = await users.getUser({ id: user?.id ?? "" });
  assert.equal(final?.version, (user?.version ?? 0n) + 1n);
});
