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
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createTestDatabase,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@shop/testing";
import postgres, { type Sql } from "postgres";
import {
  type Acknowledged,
  assertInvariants,
  placeOrdersUnderFire,
} from "./support/orders-under-fire.ts";

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

/** Places `count` orders while `victim` is killed with SIGKILL five times and restarted. */
function ordersWhileKilling(shop: Shop, victim: ServiceProcess, count: number) {
  return placeOrdersUnderFire(
    {
      usersUrl: shop.users.url,
      inventoryUrl: shop.inventory.url,
      ordersUrl: shop.orders.url,
      sql: shop.sql,
    },
    {
      count,
      concurrency: 32,
      async fire() {
        for (let kill = 0; kill < 5; kill++) {
          await sleep(400 + Math.random() * 600);
          await victim.kill("SIGKILL");
          await victim.restart();
        }
      },
    },
  );
}

/** Every order acknowledged by any run of this file, by request id. */
const everAcknowledged = new Map<string, Acknowledged>();

async function checkRun(shop: Shop, run: Awaited<ReturnType<typeof ordersWhileKilling>>) {
  for (const [requestId, ack] of run.acknowledged) everAcknowledged.set(requestId, ack);
  await assertInvariants(shop.sql, everAcknowledged, run.initial);
}

let shop: Shop;
before(async () => {
  shop = await startShop();
});
after(async () => {
  await stopShop(shop);
});

test("1,000 orders while the orders service is killed 5 times: nothing lost, nothing doubled", async () => {
  const run = await ordersWhileKilling(shop, shop.orders, 1_000);
  assert.equal(run.refused.length, 0, `refused: ${run.refused.slice(0, 3).join("; ")}`);
  assert.equal(run.acknowledged.size, 1_000);
  await checkRun(shop, run);
});

test("1,000 orders while the inventory service is killed 5 times: no stock held for nothing", async () => {
  const run = await ordersWhileKilling(shop, shop.inventory, 1_000);
  assert.equal(run.refused.length, 0, `refused: ${run.refused.slice(0, 3).join("; ")}`);
  await checkRun(shop, run);
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
