// The orders service as it runs: real users, inventory and orders servers on free ports over one
// real PostgreSQL, called by independent gRPC clients, checking what a shopper relies on.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { EventType, type Order, OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { UserStatus } from "@shop/api/shop/user/v1/user_pb";
import { createRequestStream, expectCode, readMetric, recordStream, waitFor } from "@shop/testing";
import postgres from "postgres";
import { type Shop, startShop } from "./shop.ts";

let shop: Shop;
before(async () => {
  shop = await startShop();
});
after(async () => {
  await shop.stop();
});

async function newUser(): Promise<string> {
  const { user } = await shop.usersClient.createUser({
    name: "Shopper",
    email: `shopper-${randomUUID()}@example.com`,
  });
  assert.ok(user);
  return user.id;
}

/** The stock and reserved units of each sku as the inventory service reports them now. */
async function levels(
  ...skus: string[]
): Promise<Record<string, { stock: bigint; reserved: bigint }>> {
  const entries = await Promise.all(
    skus.map(async (sku) => {
      const { product } = await shop.inventoryClient.getProduct({ sku });
      assert.ok(product, sku);
      return [sku, { stock: product.stock, reserved: product.reserved }] as const;
    }),
  );
  return Object.fromEntries(entries);
}

function less(
  before: Record<string, { stock: bigint; reserved: bigint }>,
  taken: Record<string, bigint>,
): Record<string, { stock: bigint; reserved: bigint }> {
  return Object.fromEntries(
    Object.entries(before).map(([sku, level]) => {
      const quantity = taken[sku] ?? 0n;
      return [sku, { stock: level.stock - quantity, reserved: level.reserved + quantity }];
    }),
  );
}

async function place(userId: string, sku = "TEA-BLACK-100G", quantity = 1n): Promise<Order> {
  const { order } = await shop.ordersClient.createOrder({ userId, items: [{ sku, quantity }] });
  assert.ok(order);
  return order;
}

describe("CreateOrder", () => {
  test("places the order: stock taken by exactly the quantities, total = Σ quantity × price", async () => {
    const userId = await newUser();
    const skus = ["TEA-GREEN-100G", "MUG-CERAMIC"];
    const before = await levels(...skus);
    const prices = new Map(
      await Promise.all(
        skus.map(
          async (sku) =>
            [
              sku,
              (await shop.inventoryClient.getProduct({ sku })).product?.priceCents ?? 0n,
            ] as const,
        ),
      ),
    );
    const { order } = await shop.ordersClient.createOrder({
      userId,
      items: [
        { sku: "TEA-GREEN-100G", quantity: 3n },
        { sku: "MUG-CERAMIC", quantity: 2n },
      ],
      requestId: randomUUID(),
    });
    assert.ok(order);
    assert.equal(order.status, OrderStatus.CONFIRMED);
    assert.equal(order.userId, userId);
    assert.equal(
      order.totalCents,
      3n * (prices.get("TEA-GREEN-100G") ?? 0n) + 2n * (prices.get("MUG-CERAMIC") ?? 0n),
    );
    for (const item of order.items) assert.equal(item.unitPriceCents, prices.get(item.sku));
    assert.deepEqual(
      await levels(...skus),
      less(before, { "TEA-GREEN-100G": 3n, "MUG-CERAMIC": 2n }),
    );
    const { order: got } = await shop.ordersClient.getOrder({ id: order.id });
    assert.deepEqual(got, order);
  });

  test("an unknown user is failed_precondition", async () => {
    const before = await levels("TEA-GREEN-100G");
    await expectCode(
      shop.ordersClient.createOrder({
        userId: randomUUID(),
        items: [{ sku: "TEA-GREEN-100G", quantity: 1n }],
      }),
      Code.FailedPrecondition,
    );
    assert.deepEqual(await levels("TEA-GREEN-100G"), before);
  });

  test("a user suspended through the users service is failed_precondition", async () => {
    const userId = await newUser();
    await place(userId);
    const { user } = await shop.usersClient.getUser({ id: userId });
    await shop.usersClient.updateUser({
      id: userId,
      version: user?.version ?? 0n,
      status: UserStatus.SUSPENDED,
    });
    const before = await levels("TEA-GREEN-100G");
    const error = await expectCode(
      shop.ordersClient.createOrder({ userId, items: [{ sku: "TEA-GREEN-100G", quantity: 1n }] }),
      Code.FailedPrecondition,
    );
    assert.match(error.rawMessage, /suspended/);
    assert.deepEqual(await levels("TEA-GREEN-100G"), before);
  });

  test("short stock is failed_precondition and leaves no stock reserved", async () => {
    const userId = await newUser();
    const before = await levels("COFFEE-BEANS-1KG", "KETTLE-STEEL");
    const error = await expectCode(
      shop.ordersClient.createOrder({
        userId,
        items: [
          { sku: "COFFEE-BEANS-1KG", quantity: 1n },
          { sku: "KETTLE-STEEL", quantity: (before["KETTLE-STEEL"]?.stock ?? 0n) + 1n },
        ],
        requestId: randomUUID(),
      }),
      Code.FailedPrecondition,
    );
    assert.match(error.rawMessage, /KETTLE-STEEL/);
    assert.deepEqual(await levels("COFFEE-BEANS-1KG", "KETTLE-STEEL"), before);
    const { orders } = await shop.ordersClient.listOrders({ userId });
    assert.equal(orders.length, 0);
  });

  test("10 concurrent calls with one request_id make one order and take the stock once", async () => {
    const userId = await newUser();
    const requestId = randomUUID();
    const before = await levels("HONEY-JAR-250G");
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        shop.ordersClient.createOrder({
          userId,
          items: [{ sku: "HONEY-JAR-250G", quantity: 2n }],
          requestId,
        }),
      ),
    );
    const [first] = answers;
    for (const answer of answers) assert.deepEqual(answer.order, first?.order);
    assert.equal(first?.order?.requestId, requestId);
    const { orders } = await shop.ordersClient.listOrders({ userId });
    assert.deepEqual(
      orders.map((order) => order.id),
      [first?.order?.id],
    );
    assert.deepEqual(await levels("HONEY-JAR-250G"), less(before, { "HONEY-JAR-250G": 2n }));
  });

  test("racing calls with one request_id but two contents: one order, the rest invalid_argument", async () => {
    const userId = await newUser();
    const requestId = randomUUID();
    const before = await levels("HONEY-JAR-250G");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) =>
        shop.ordersClient.createOrder({
          userId,
          items: [{ sku: "HONEY-JAR-250G", quantity: i % 2 === 0 ? 1n : 3n }],
          requestId,
        }),
      ),
    );
    const placed = outcomes.flatMap((outcome) =>
      outcome.status === "fulfilled" ? [outcome.value.order] : [],
    );
    const refused = outcomes.flatMap((outcome) =>
      outcome.status === "rejected" ? [outcome.reason] : [],
    );
    assert.ok(placed.length >= 1, "no call placed the order");
    for (const order of placed) assert.deepEqual(order, placed[0]);
    for (const reason of refused) await expectCode(Promise.reject(reason), Code.InvalidArgument);
    const quantity = placed[0]?.items[0]?.quantity ?? 0n;
    assert.deepEqual(await levels("HONEY-JAR-250G"), less(before, { "HONEY-JAR-250G": quantity }));
    assert.equal((await shop.ordersClient.listOrders({ userId })).orders.length, 1);
  });

  test("the same request_id with other content is invalid_argument and changes nothing", async () => {
    const userId = await newUser();
    const requestId = randomUUID();
    await shop.ordersClient.createOrder({
      userId,
      items: [{ sku: "FILTER-PAPER-100", quantity: 1n }],
      requestId,
    });
    const before = await levels("FILTER-PAPER-100");
    const error = await expectCode(
      shop.ordersClient.createOrder({
        userId,
        items: [{ sku: "FILTER-PAPER-100", quantity: 5n }],
        requestId,
      }),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /request_id/);
    assert.deepEqual(await levels("FILTER-PAPER-100"), before);
    assert.equal((await shop.ordersClient.listOrders({ userId })).orders.length, 1);
  });
});

describe("CancelOrder", () => {
  test("gives the stock back exactly once; a second cancel is failed_precondition", async () => {
    const userId = await newUser();
    const before = await levels("TEAPOT-GLASS");
    const order = await place(userId, "TEAPOT-GLASS", 3n);
    assert.deepEqual(await levels("TEAPOT-GLASS"), less(before, { "TEAPOT-GLASS": 3n }));
    const { order: cancelled } = await shop.ordersClient.cancelOrder({ id: order.id });
    assert.equal(cancelled?.status, OrderStatus.CANCELLED);
    assert.deepEqual(await levels("TEAPOT-GLASS"), before);
    await expectCode(shop.ordersClient.cancelOrder({ id: order.id }), Code.FailedPrecondition);
    assert.deepEqual(await levels("TEAPOT-GLASS"), before);
    const { order: got } = await shop.ordersClient.getOrder({ id: order.id });
    assert.equal(got?.status, OrderStatus.CANCELLED);
  });
});

test("GetOrder of an order that does not exist is not_found", async () => {
  await expectCode(shop.ordersClient.getOrder({ id: randomUUID() }), Code.NotFound);
});

test("ListOrders of one user pages through exactly that user's orders, newest first", async () => {
  const [userId, other] = [await newUser(), await newUser()];
  const mine: string[] = [];
  for (let i = 0; i < 5; i++) {
    mine.push((await place(userId)).id);
    if (i < 2) await place(other);
  }
  const pages: Order[][] = [];
  let pageToken = "";
  do {
    const page = await shop.ordersClient.listOrders({ userId, pageSize: 2, pageToken });
    assert.ok(page.revision > 0n);
    pages.push(page.orders);
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && pages.length < 10);
  assert.deepEqual(
    pages.map((page) => page.length),
    [2, 2, 1],
  );
  const listed = pages.flat();
  assert.ok(listed.every((order) => order.userId === userId));
  assert.deepEqual(
    listed.map((order) => order.id),
    [...mine].reverse(),
  );
});

test("ListOrders with a status pages through exactly those orders, newest first, and total_size counts them", async () => {
  const [userId, other] = [await newUser(), await newUser()];
  const placed: Order[] = [];
  for (let i = 0; i < 6; i++) {
    const order = await place(userId);
    const cancelled = i % 3 === 0 && (await shop.ordersClient.cancelOrder({ id: order.id })).order;
    placed.push(cancelled || order);
    await place(other);
  }
  // An order still being placed was never acknowledged to anyone: no list shows or counts it.
  const sql = postgres(shop.database.url, { max: 1, onnotice: () => {} });
  try {
    await sql`
      insert into orders.orders (id, user_id, items, total_cents, status, request_fingerprint)
      values (${randomUUID()}, ${userId}, '[]', 0, 'pending', '')`;
  } finally {
    await sql.end();
  }
  for (const status of [undefined, OrderStatus.CONFIRMED, OrderStatus.CANCELLED]) {
    const expected = placed
      .filter((order) => status === undefined || order.status === status)
      .map((order) => order.id)
      .reverse();
    const listed: string[] = [];
    let pageToken = "";
    do {
      const page = await shop.ordersClient.listOrders({ userId, status, pageSize: 2, pageToken });
      assert.equal(page.totalSize, expected.length);
      listed.push(...page.orders.map((order) => order.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.deepEqual(listed, expected, status === undefined ? "any status" : OrderStatus[status]);
  }
  // Without a user_id, the status counts every user's orders in it, as many as its pages list.
  const everyConfirmed = await shop.ordersClient.listOrders({
    status: OrderStatus.CONFIRMED,
    pageSize: 1000,
  });
  assert.equal(everyConfirmed.nextPageToken, "");
  assert.ok(everyConfirmed.orders.every((order) => order.status === OrderStatus.CONFIRMED));
  assert.ok(everyConfirmed.orders.some((order) => order.userId === other));
  assert.equal(everyConfirmed.totalSize, everyConfirmed.orders.length);

  const first = await shop.ordersClient.listOrders({
    userId,
    status: OrderStatus.CONFIRMED,
    pageSize: 1,
  });
  for (const other of [
    { userId, status: OrderStatus.CANCELLED },
    { userId },
    { status: OrderStatus.CONFIRMED },
  ]) {
    await expectCode(
      shop.ordersClient.listOrders({ ...other, pageSize: 1, pageToken: first.nextPageToken }),
      Code.InvalidArgument,
    );
  }
});

test("WatchOrders with a user_id sees only that user's orders", async () => {
  const [userId, other] = [await newUser(), await newUser()];
  const earlier = await place(userId);
  await place(other);
  const controller = new AbortController();
  const watch = recordStream(
    shop.ordersClient.watchOrders({ userId }, { signal: controller.signal }),
  );
  const events = () => watch.messages.flatMap((message) => message.events);
  try {
    await waitFor(() => events().some((event) => event.order?.id === earlier.id), {
      message: "the snapshot of the user's order",
    });
    await place(other);
    const later = await place(userId);
    const created = await waitFor(
      () =>
        events().find((event) => event.type === EventType.CREATED && event.order?.id === later.id),
      { message: "the creation of the user's new order" },
    );
    assert.equal(created.order?.userId, userId);
    // Changes come in revision order, so the other user's order (made before) would be here by now.
    assert.deepEqual(
      events().map((event) => [event.type, event.order?.id]),
      [
        [EventType.SNAPSHOT, earlier.id],
        [EventType.CREATED, later.id],
      ],
    );
  } finally {
    controller.abort();
  }
  await watch.ended;
  // The handler ends on the server too once the client has gone away.
  await waitFor(
    async () =>
      (await readMetric(shop.orders.server.url, "rpc_server_duration_seconds_count", {
        rpc_method: "WatchOrders",
      })) >= 1,
    { message: "the WatchOrders handler ends when the client cancels" },
  );
});

test("TrackOrders over gRPC: the snapshot of an added order, then its cancellation", async () => {
  const userId = await newUser();
  const order = await place(userId);
  const unknown = randomUUID();
  const requests = createRequestStream<{ addOrderIds?: string[]; removeOrderIds?: string[] }>();
  const controller = new AbortController();
  const track = recordStream(
    shop.ordersClient.trackOrders(requests, { signal: controller.signal }),
  );
  const events = () => track.messages.flatMap((message) => message.events);
  try {
    requests.push({ addOrderIds: [order.id, unknown] });
    const snapshot = await waitFor(
      () =>
        events().find((event) => event.type === EventType.SNAPSHOT && event.order?.id === order.id),
      { message: "the snapshot of the added order" },
    );
    assert.equal(snapshot.order?.status, OrderStatus.CONFIRMED);
    assert.ok(track.messages.some((message) => message.unknownOrderIds.includes(unknown)));

    await shop.ordersClient.cancelOrder({ id: order.id });
    const change = await waitFor(
      () =>
        events().find((event) => event.type === EventType.UPDATED && event.order?.id === order.id),
      { message: "the cancellation of the tracked order" },
    );
    assert.equal(change.order?.status, OrderStatus.CANCELLED);
    assert.ok(change.revision > snapshot.revision);

    // Closing the request side ends the call promptly (well before the next heartbeat).
    requests.close();
    await waitFor(() => track.done, {
      timeoutMs: 2_000,
      message: "the stream ends after the half-close",
    });
    assert.equal(track.error, undefined);
  } finally {
    controller.abort();
  }
});
