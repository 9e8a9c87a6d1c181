// A customer sees only their own orders, in GetOrder, ListOrders, WatchOrders and TrackOrders alike
// (and places and cancels only their own): customer A watches and tracks while customer B makes
// 1,000 changes to B's orders, and A receives none of them. An admin sees everything.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { type Client, Code, createClient, type Transport } from "@connectrpc/connect";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { type Order, OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createRequestStream, expectCode, protocols, recordStream, waitFor } from "@shop/testing";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

let mesh: AuthMesh;
before(async () => {
  mesh = await startAuthMesh();
});
after(() => mesh.stop());

const grpc = (url: string): Transport => {
  const protocol = protocols.find((candidate) => candidate.name === "grpc");
  assert.ok(protocol);
  return protocol.transport(url);
};

/** Clients of the three services that send `token`. */
function signedIn(token: string) {
  const headers = { authorization: `Bearer ${token}` };
  const withToken = <T extends object>(client: T): T =>
    new Proxy(client, {
      get(target, name) {
        const method = Reflect.get(target, name) as (input: unknown, options?: object) => unknown;
        return (input: unknown, options: object = {}) =>
          method.call(target, input, { ...options, headers });
      },
    });
  return {
    users: withToken(createClient(UserService, grpc(mesh.users.server.url))),
    inventory: withToken(createClient(InventoryService, grpc(mesh.inventory.server.url))),
    orders: withToken(createClient(OrderService, grpc(mesh.orders.server.url))),
  };
}

async function placeOrder(orders: Client<typeof OrderService>, userId: string): Promise<Order> {
  const { order } = await orders.createOrder({
    userId,
    items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
    requestId: randomUUID(),
  });
  assert.ok(order);
  return order;
}

/** Runs `work` over `items` with at most `concurrency` at a time. */
async function inParallel<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await work(item);
      }
    }),
  );
}

test("customer A cannot read, list, watch, track, cancel or order for customer B: 0 of B's events over 1,000 changes", async () => {
  const admin = signedIn(await mesh.token({ subject: "admin", roles: ["admin"] }));
  await admin.inventory.adjustStock({ sku: "MUG-CERAMIC", delta: 10_000n });
  const { user: a } = await admin.users.createUser({ name: "Ann", email: "ann@example.com" });
  const { user: b } = await admin.users.createUser({ name: "Bob", email: "bob@example.com" });
  assert.ok(a && b);
  const asA = signedIn(await mesh.token({ subject: a.id, roles: ["customer"] }));
  const asB = signedIn(await mesh.token({ subject: b.id, roles: ["customer"] }));

  const firstOfB = await placeOrder(asB.orders, b.id);
  const firstOfA = await placeOrder(asA.orders, a.id);

  // A watches every order it may see, and tracks B's first order by id.
  const watch = recordStream(asA.orders.watchOrders({}));
  const trackRequests = createRequestStream<{ addOrderIds: string[]; removeOrderIds: string[] }>();
  const track = recordStream(asA.orders.trackOrders(trackRequests));
  trackRequests.push({ addOrderIds: [firstOfB.id, firstOfA.id], removeOrderIds: [] });
  await waitFor(() => watch.messages.length > 0 && track.messages.length > 0, {
    message: "the watch and the tracking stream answer",
  });
  assert.deepEqual(track.messages[0]?.unknownOrderIds, [firstOfB.id], "B's order is unknown to A");

  // B makes 1,000 changes (500 orders placed, then cancelled) while A places a few of its own.
  const placedByB: Order[] = [];
  await inParallel(
    Array.from({ length: 500 }, (_, i) => i),
    16,
    async () => {
      placedByB.push(await placeOrder(asB.orders, b.id));
    },
  );
  const placedByA = [firstOfA];
  for (let i = 0; i < 4; i++) placedByA.push(await placeOrder(asA.orders, a.id));
  await inParallel(placedByB, 16, async (order) => {
    await asB.orders.cancelOrder({ id: order.id });
  });
  await asA.orders.cancelOrder({ id: firstOfA.id });

  // Everything is committed at the revision an admin's list reflects; A's streams reach it.
  const { revision: final } = await admin.orders.listOrders({ pageSize: 1 });
  await waitFor(() => (watch.messages.at(-1)?.revision ?? 0n) >= final, {
    timeoutMs: 30_000,
    message: "A's watch catches up",
  });
  await waitFor(() => (track.messages.at(-1)?.revision ?? 0n) >= final, {
    timeoutMs: 30_000,
    message: "A's tracking stream catches up",
  });
  const watched = watch.messages.flatMap((message) => message.events);
  const tracked = track.messages.flatMap((message) => message.events);
  const ofB = (events: typeof watched) => events.filter((event) => event.order?.userId !== a.id);
  assert.equal(ofB(watched).length, 0, "A's watch shows none of B's changes");
  assert.equal(ofB(tracked).length, 0, "A's tracking shows none of B's changes");
  // A does see its own: five placed (one before the watch: in its snapshot), one cancelled.
  const seenOfA = new Set(watched.map((event) => event.order?.id));
  for (const order of placedByA) assert.ok(seenOfA.has(order.id), `A sees its order ${order.id}`);
  assert.ok(
    tracked.some(
      (event) => event.order?.id === firstOfA.id && event.order.status === OrderStatus.CANCELLED,
    ),
    "A's tracking shows its own order cancelled",
  );

  // Reads: B's order does not exist for A; A's list has only A's orders.
  await expectCode(asA.orders.getOrder({ id: firstOfB.id }), Code.NotFound);
  await expectCode(asA.orders.cancelOrder({ id: placedByB[0]?.id ?? "" }), Code.NotFound);
  const listed = await asA.orders.listOrders({ pageSize: 1000 });
  assert.deepEqual(
    listed.orders.map((order) => order.id).sort(),
    placedByA.map((order) => order.id).sort(),
  );
  assert.equal(listed.totalSize, placedByA.length, "A's total_size counts only A's orders");
  // Asking for B's orders outright is refused, as is placing one for B.
  await expectCode(asA.orders.listOrders({ userId: b.id }), Code.PermissionDenied);
  const refusedWatch = recordStream(asA.orders.watchOrders({ userId: b.id }));
  await refusedWatch.ended;
  assert.equal((refusedWatch.error as { code?: Code }).code, Code.PermissionDenied);
  await expectCode(placeOrder(asA.orders, b.id), Code.PermissionDenied);

  // An admin sees B's orders.
  const { order } = await admin.orders.getOrder({ id: firstOfB.id });
  assert.equal(order?.userId, b.id);
  const adminList = await admin.orders.listOrders({ userId: b.id, pageSize: 1000 });
  assert.equal(adminList.orders.length, 501);
  assert.equal(adminList.totalSize, adminList.orders.length);

  trackRequests.close();
});
