// Request ids are remembered for a configurable time (REQUEST_ID_TTL_MS): within it a repeat gets
// the first order back, after it the same id places a new order. Real servers, real PostgreSQL.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { inventoryService } from "../../inventory/src/app.ts";
import { usersService } from "../../users/src/app.ts";
import { ordersService } from "../src/app.ts";

let database: TestDatabase;
const running: RunningService[] = [];
let orders: RunningService;
let users: RunningService;

before(async () => {
  database = await createTestDatabase();
  users = await startTestService(usersService, database.url);
  const inventory = await startTestService(
    inventoryService({ seedDemoCatalog: true }),
    database.url,
  );
  orders = await startTestService(
    ordersService({
      usersUrl: users.server.url,
      inventoryUrl: inventory.server.url,
      upstreamTimeoutMs: 2_000,
      requestIdTtlMs: 1_500,
      sweepIntervalMs: 100,
    }),
    database.url,
  );
  running.push(orders, inventory, users);
});
after(async () => {
  for (const service of running) await service.stop(100);
  await database.drop();
});

test("a request id is remembered for its time to live, then may place a new order", async () => {
  const userClient = createClient(UserService, createGrpcTransport({ baseUrl: users.server.url }));
  const orderClient = createClient(
    OrderService,
    createGrpcTransport({ baseUrl: orders.server.url }),
  );
  const { user } = await userClient.createUser({ name: "Ttl", email: "ttl@example.com" });
  const request = {
    userId: user?.id ?? "",
    items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
    requestId: crypto.randomUUID(),
  };
  const first = await orderClient.createOrder(request);
  const repeat = await orderClient.createOrder(request);
  assert.equal(repeat.order?.id, first.order?.id, "within the time to live: the same order");

  await sleep(2_000);
  const later = await orderClient.createOrder(request);
  assert.ok(later.order?.id);
  assert.notEqual(later.order?.id, first.order?.id, "after it: a new order");
  const { orders: listed } = await orderClient.listOrders({ userId: user?.id ?? "" });
  assert.equal(listed.length, 2);
  assert.equal(
    listed.find((order) => order.id === first.order?.id)?.requestId,
    "",
    "the first order no longer carries the expired request id",
  );
});
