// A deadline set by the caller bounds the whole call tree: with a 200 ms budget on CreateOrder and
// a users service that takes 1 s, the caller gets deadline_exceeded within 250 ms, and the users
// handler sees its call cancelled instead of working on for nobody.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLogger, defaultLimits, type RunningService, type Server, serve } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { ordersService } from "../services/orders/src/app.ts";

const aborted: number[] = [];
let slowUsers: Server;
let orders: RunningService;
let database: TestDatabase;

before(async () => {
  database = await createTestDatabase();
  slowUsers = await serve({
    name: "slow-users",
    services: [UserService],
    routes: (router) =>
      router.service(UserService, {
        async getUser(req, context) {
          const started = Date.now();
          await sleep(1_000, undefined, { signal: context.signal }).catch(() => {});
          if (context.signal.aborted) aborted.push(Date.now() - started);
          return { user: { id: req.id } };
        },
      }),
    port: 0,
    host: "127.0.0.1",
    limits: defaultLimits,
    corsOrigins: [],
    logger: createLogger("slow-users", "silent"),
    readiness: async () => ({ ok: true }),
  });
});
after(async () => {
  await slowUsers.close(100);
  await database.drop();
});

/**
 * An orders service of its own for each protocol: every call here times out at users, and after
 * five of them the upstream's circuit breaker would open and answer unavailable at once, which is
 * its job but not what this file is about.
 */
async function startOrders(): Promise<void> {
  orders = await startTestService(
    ordersService({
      usersUrl: slowUsers.url,
      inventoryUrl: "http://127.0.0.1:9",
      upstreamTimeoutMs: 5_000,
    }),
    database.url,
  );
}

const transports = {
  connect: () => createConnectTransport({ baseUrl: orders.server.url, httpVersion: "1.1" }),
  grpc: () => createGrpcTransport({ baseUrl: orders.server.url }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: orders.server.url, httpVersion: "2" }),
};

for (const [protocol, transport] of Object.entries(transports)) {
  test(`a 200 ms budget on CreateOrder over ${protocol} ends in deadline_exceeded within 250 ms`, async (t) => {
    await startOrders();
    t.after(() => orders.stop(100));
    const client = createClient(OrderService, transport());
    // One call first, unmeasured, so that connections and compiled code are warm: the budget is
    // about propagating the deadline, not about a cold start on a busy machine.
    const warming = aborted.length;
    await client
      .createOrder(
        { userId: crypto.randomUUID(), items: [{ sku: "MUG-CERAMIC", quantity: 1n }] },
        { timeoutMs: 200 },
      )
      .catch(() => {});
    const warmDeadline = Date.now() + 2_000;
    while (aborted.length === warming && Date.now() < warmDeadline) await sleep(10);
    const before = aborted.length;
    const started = performance.now();
    await assert.rejects(
      client.createOrder(
        { userId: crypto.randomUUID(), items: [{ sku: "MUG-CERAMIC", quantity: 1n }] },
        { timeoutMs: 200 },
      ),
      (error: unknown) => error instanceof ConnectError && error.code === Code.DeadlineExceeded,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 250, `answered after ${Math.round(elapsed)} ms`);
    // The users handler is told: its signal aborts at about the caller's deadline, not after 1 s.
    const deadline = Date.now() + 2_000;
    while (aborted.length === before && Date.now() < deadline) await sleep(10);
    assert.equal(aborted.length, before + 1, "the users handler saw its signal aborted");
    assert.ok((aborted.at(-1) ?? Infinity) < 400, `aborted after ${aborted.at(-1)} ms`);
  });
}
