// Orders placed while parts of the shop are killed, and what must hold afterwards: shared by the
// single-process chaos test (orders-chaos.test.ts) and the cluster test (cluster.test.ts).
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { Sql } from "postgres";

const definite = new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.NotFound]);

/** Where the orders go: the services' addresses (or their edges') and the shop's database. */
export interface OrdersTarget {
  usersUrl: string;
  inventoryUrl: string;
  ordersUrl: string;
  sql: Sql;
}

/** An acknowledged order. */
export interface Acknowledged {
  id: string;
  sku: string;
  quantity: bigint;
}

/** A call that failed and was tried again: when (ms since the orders began) and why. */
export interface Retried {
  at: number;
  error: string;
}

/**
 * Places `count` orders at `concurrency` while `fire` runs (it kills and restarts what it likes),
 * each client retrying its order with the same request_id until it gets a definite answer.
 * Returns the acknowledged orders by request id, the stock each product started with, and every
 * failed attempt.
 */
export async function placeOrdersUnderFire(
  target: OrdersTarget,
  options: { count: number; concurrency: number; fire: () => Promise<void> },
) {
  const grpc = (url: string) => createGrpcTransport({ baseUrl: url });
  const users = createClient(UserService, grpc(target.usersUrl));
  const inventory = createClient(InventoryService, grpc(target.inventoryUrl));
  const orders = createClient(OrderService, grpc(target.ordersUrl));
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

  const acknowledged = new Map<string, Acknowledged>();
  const refused: string[] = [];
  const retried: Retried[] = [];
  const started = performance.now();
  let next = 0;
  let attempts = 0;
  let failed = false;
  const worker = async () => {
    for (let i = next++; i < options.count && !failed; i = next++) {
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
          retried.push({
            at: performance.now() - started,
            error: ConnectError.from(error).message,
          });
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
  await Promise.all([...Array.from({ length: options.concurrency }, worker), options.fire()]);
  return { acknowledged, refused, initial, attempts, retried, started };
}

/** Waits until no order is half done (pending or being rolled back). */
export async function waitForCompensation(sql: Sql): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from orders.orders where status in ('pending', 'compensating')`;
    if (row?.n === 0) return;
    assert.ok(Date.now() < deadline, `${row?.n} orders still half done after 30 s`);
    await sleep(200);
  }
}

/**
 * Once nothing is half done: every order in `everAcknowledged` (all that were ever acknowledged
 * on this database, by request id) exists exactly once and confirmed, no other order exists, and
 * for every product the stock it started with (`initial`) equals what is available plus what live
 * orders hold, with no stock held for an order that does not exist.
 */
export async function assertInvariants(
  sql: Sql,
  everAcknowledged: ReadonlyMap<string, Acknowledged>,
  initial: ReadonlyMap<string, bigint>,
): Promise<void> {
  await waitForCompensation(sql);
  const stored = await sql<{ id: string; request_id: string; status: string }[]>`
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
  const products = await sql<{ sku: string; stock: string; reserved: string }[]>`
    select sku, stock::text, reserved::text from inventory.products`;
  for (const product of products) {
    const live = held.get(product.sku) ?? 0n;
    assert.equal(BigInt(product.reserved), live, `${product.sku}: reserved = held by live orders`);
    assert.equal(
      BigInt(product.stock) + BigInt(product.reserved),
      initial.get(product.sku),
      `${product.sku}: initial stock = available + reserved by live orders`,
    );
  }
  const [orphans] = await sql<{ n: number }[]>`
    select count(*)::int as n from inventory.reservations r
    where r.status = 'held' and not exists (select 1 from orders.orders o where o.id::text = r.order_id)`;
  assert.equal(orphans?.n, 0, "no stock is held for an order that does not exist");
}
