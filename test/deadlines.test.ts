// A deadline set by the caller bounds the whole call tree: with a 1 s budget on CreateOrder and a
// users service that would take 10 s, the caller gets deadline_exceeded, the users handler is told
// the time left (at most the caller's 1 s), and it sees its call cancelled instead of working on
// for nobody. What is checked is what the services were told and did, not the wall
// clock of this busy process: a late answer here would be the machine, a missing cancel the mesh.
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

/** Per call that reached users: the time left it was given, and whether it was cancelled. */
const calls: { timeoutMs: number | undefined; outcome: "aborted" | "completed" | "pending" }[] = [];
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
          const entry: (typeof calls)[number] = {
            timeoutMs: context.timeoutMs(),
            outcome: "pending",
          };
          calls.push(entry);
          await sleep(10_000, undefined, { signal: context.signal }).catch(() => {});
          entry.outcome = context.signal.aborted ? "aborted" : "completed";
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

/** Waits (up to 5 s, well under the handler's 10 s) until the call reached users and ended there. */
async function settled(index: number): Promise<(typeof calls)[number] | undefined> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && calls[index]?.outcome !== "aborted") await sleep(10);
  return calls[index];
}

/** A budget the call reaches users within, even on a busy machine, and ten times under theirs. */
const budgetMs = 1_000;

for (const [protocol, transport] of Object.entries(transports)) {
  test(`a 1 s budget on CreateOrder over ${protocol} ends in deadline_exceeded and cancels the call at users`, async (t) => {
    await startOrders();
    t.after(() => orders.stop(100));
    const client = createClient(OrderService, transport());
    const order = () =>
      client.createOrder(
        { userId: crypto.randomUUID(), items: [{ sku: "MUG-CERAMIC", quantity: 1n }] },
        { timeoutMs: budgetMs },
      );
    // One call first, unmeasured, so that connections and compiled code are warm: the test is
    // about the deadline going along, not about a cold start on a busy machine.
    const warming = calls.length;
    await order().catch(() => {});
    await settled(warming);
    const first = calls.length;
    await assert.rejects(
      order(),
      (error: unknown) => error instanceof ConnectError && error.code === Code.DeadlineExceeded,
    );
    const call = await settled(first);
    assert.ok(call, "the call reached users");
    assert.equal(calls.length, first + 1, "one call to users (a timeout is not retried)");
    // The deadline travelled: users was given what was left of the caller's budget, not orders'
    // own 5 s upstream timeout nor nothing.
    assert.ok(
      call.timeoutMs !== undefined && call.timeoutMs > 0 && call.timeoutMs <= budgetMs,
      `users was given ${call.timeoutMs} ms`,
    );
    // And it was enforced there: the handler's signal aborted long before its 10 s of work.
    assert.equal(call.outcome, "aborted", "the users handler saw its signal aborted");
  });
}
