// OrderService's handlers through an in-memory Connect transport, with the mesh's error
// interceptor in front as in production: the code a client sees for each domain outcome.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import {
  callerKey,
  createContractValidator,
  createErrorInterceptor,
  createLogger,
  createValidationInterceptor,
} from "@shop/mesh";
import { createRequestStream, expectCode } from "@shop/testing";
import { OrderRetryLaterError, UpstreamUnavailableError } from "../src/domain/errors.ts";
import { orderRoutes } from "../src/transport/routes.ts";
import {
  createFakeOrderRepository,
  createFakeStockKeeper,
  createFakeUserDirectory,
} from "./fakes.ts";

const alice = randomUUID();
const bob = randomUUID();
const suspended = randomUUID();

/** The caller as authentication would have verified it; the handlers then see only its scope. */
const customer = (userId: string) => ({
  subject: userId,
  roles: ["customer"],
  expiresAt: undefined,
});
type Caller = ReturnType<typeof customer>;

function setup() {
  const deps = {
    orders: createFakeOrderRepository(),
    users: createFakeUserDirectory({
      [alice]: "active",
      [bob]: "active",
      [suspended]: "suspended",
    }),
    stock: createFakeStockKeeper({
      TEA: { priceCents: 500n, stock: 10n },
      MUG: { priceCents: 1200n, stock: 3n },
    }),
  };
  const clientAs = (caller: Caller | undefined) => {
    const transport = createRouterTransport(orderRoutes(deps), {
      router: {
        interceptors: [
          createErrorInterceptor(createLogger("orders-test", "silent")),
          (next) => (req) => {
            req.contextValues.set(callerKey, caller);
            return next(req);
          },
          createValidationInterceptor(createContractValidator([OrderService.file])),
        ],
      },
    });
    return createClient(OrderService, transport);
  };
  return { ...deps, client: clientAs(undefined), clientAs };
}

const items = [{ sku: "TEA", quantity: 2n }];

describe("CreateOrder", () => {
  test("returns the confirmed order with its total", async () => {
    const { client } = setup();
    const { order } = await client.createOrder({ userId: alice, items, requestId: randomUUID() });
    assert.equal(order?.status, OrderStatus.CONFIRMED);
    assert.equal(order?.totalCents, 1000n);
    assert.equal(order?.items[0]?.unitPriceCents, 500n);
  });

  for (const [name, userId] of [
    ["an unknown user", randomUUID()],
    ["a suspended user", suspended],
  ] as const) {
    test(`${name} is failed_precondition`, async () => {
      const { client, stock } = setup();
      await expectCode(client.createOrder({ userId, items }), Code.FailedPrecondition);
      assert.equal(stock.stock("TEA"), 10n);
    });
  }

  test("short stock is failed_precondition and the message names the product", async () => {
    const { client } = setup();
    const error = await expectCode(
      client.createOrder({ userId: alice, items: [{ sku: "MUG", quantity: 4n }] }),
      Code.FailedPrecondition,
    );
    assert.match(error.rawMessage, /MUG/);
  });

  const invalid = [
    { name: "a malformed user id", request: { userId: "nobody", items } },
    { name: "no items", request: { userId: alice, items: [] } },
    { name: "a quantity of 0", request: { userId: alice, items: [{ sku: "TEA", quantity: 0n }] } },
    {
      name: "a duplicate sku",
      request: {
        userId: alice,
        items: [
          { sku: "TEA", quantity: 1n },
          { sku: "TEA", quantity: 1n },
        ],
      },
    },
    { name: "a malformed request_id", request: { userId: alice, items, requestId: "retry-1" } },
  ];
  for (const { name, request } of invalid) {
    test(`${name} is invalid_argument`, async () => {
      const { client, stock } = setup();
      await expectCode(client.createOrder(request), Code.InvalidArgument);
      assert.equal(stock.stock("TEA"), 10n);
    });
  }

  test("a request_id reused with other items is invalid_argument", async () => {
    const { client } = setup();
    const requestId = randomUUID();
    await client.createOrder({ userId: alice, items, requestId });
    const error = await expectCode(
      client.createOrder({ userId: alice, items: [{ sku: "TEA", quantity: 3n }], requestId }),
      Code.InvalidArgument,
    );
    assert.match(error.rawMessage, /request_id/);
  });

  test("a users service that is down is unavailable", async () => {
    const { client, users } = setup();
    users.failNext(
      new UpstreamUnavailableError("the users service is unavailable; retry later", {
        timedOut: false,
      }),
    );
    const error = await expectCode(client.createOrder({ userId: alice, items }), Code.Unavailable);
    assert.equal(error.rawMessage, "the users service is unavailable; retry later");
  });

  test("a users service that does not answer in time is deadline_exceeded", async () => {
    const { client, users } = setup();
    users.failNext(
      new UpstreamUnavailableError("the users service did not answer in time", { timedOut: true }),
    );
    await expectCode(client.createOrder({ userId: alice, items }), Code.DeadlineExceeded);
  });

  test("an inventory that is down is unavailable, one that is slow deadline_exceeded", async () => {
    const { client, stock } = setup();
    stock.failNext("reserve", new UpstreamUnavailableError("inventory down", { timedOut: false }));
    await expectCode(client.createOrder({ userId: alice, items }), Code.Unavailable);
    stock.failNext("reserve", new UpstreamUnavailableError("inventory slow", { timedOut: true }));
    await expectCode(client.createOrder({ userId: alice, items }), Code.DeadlineExceeded);
  });

  test("an order rolled back while it was being placed is aborted, and says to retry", async () => {
    const { client, stock } = setup();
    stock.failNext(
      "reserve",
      new OrderRetryLaterError(
        "the order was rolled back while it was being placed; send the request again",
      ),
    );
    const error = await expectCode(
      client.createOrder({ userId: alice, items, requestId: randomUUID() }),
      Code.Aborted,
    );
    assert.match(error.rawMessage, /again/);
  });

  test("an unexpected repository error is internal, with nothing but a generic message", async () => {
    const { client, orders, stock } = setup();
    orders.failNext(
      "begin",
      new Error(
        'duplicate key value violates unique constraint "orders_pkey" at /srv/orders/store.ts:40',
      ),
    );
    const error = await expectCode(client.createOrder({ userId: alice, items }), Code.Internal);
    assert.equal(error.rawMessage, "internal error");
    assert.equal(stock.stock("TEA"), 10n);
  });
});

describe("GetOrder", () => {
  test("an unknown id is not_found", async () => {
    const { client } = setup();
    await expectCode(client.getOrder({ id: randomUUID() }), Code.NotFound);
  });

  for (const id of ["", "not-a-uuid"]) {
    test(`${JSON.stringify(id)}, which is no UUID, is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.getOrder({ id }), Code.InvalidArgument);
    });
  }

  test("an unexpected repository error is internal with a generic message", async () => {
    const { client, orders } = setup();
    orders.failNext("get", new Error("syntax error at or near SELECT"));
    const error = await expectCode(client.getOrder({ id: randomUUID() }), Code.Internal);
    assert.equal(error.rawMessage, "internal error");
  });
});

describe("CancelOrder", () => {
  test("an unknown order is not_found", async () => {
    const { client } = setup();
    await expectCode(client.cancelOrder({ id: randomUUID() }), Code.NotFound);
  });

  test("cancelling twice is failed_precondition, and the stock comes back once", async () => {
    const { client, stock } = setup();
    const { order } = await client.createOrder({ userId: alice, items });
    const { order: cancelled } = await client.cancelOrder({ id: order?.id ?? "" });
    assert.equal(cancelled?.status, OrderStatus.CANCELLED);
    await expectCode(client.cancelOrder({ id: order?.id ?? "" }), Code.FailedPrecondition);
    assert.equal(stock.stock("TEA"), 10n);
  });

  test("an inventory that is down is unavailable and the order stays confirmed", async () => {
    const { client, stock } = setup();
    const { order } = await client.createOrder({ userId: alice, items });
    stock.failNext("release", new UpstreamUnavailableError("inventory down", { timedOut: false }));
    await expectCode(client.cancelOrder({ id: order?.id ?? "" }), Code.Unavailable);
    const { order: current } = await client.getOrder({ id: order?.id ?? "" });
    assert.equal(current?.status, OrderStatus.CONFIRMED);
  });
});

describe("ListOrders", () => {
  test("a forged page_token is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.listOrders({ pageToken: "forged" }), Code.InvalidArgument);
    await expectCode(
      client.listOrders({ pageToken: Buffer.from('{"after":"1 or 1=1"}').toString("base64url") }),
      Code.InvalidArgument,
    );
  });

  test("a negative page_size is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.listOrders({ pageSize: -5 }), Code.InvalidArgument);
  });

  test("a malformed user_id is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.listOrders({ userId: "nobody" }), Code.InvalidArgument);
  });

  /** Places `count` orders for `userId` and cancels every `cancelEvery`th; returns them all. */
  async function placeOrders(
    client: ReturnType<typeof setup>["client"],
    userId: string,
    count: number,
    cancelEvery: number,
  ) {
    const placed = [];
    for (let i = 0; i < count; i++) {
      const { order } = await client.createOrder({ userId, items: [{ sku: "TEA", quantity: 1n }] });
      assert.ok(order);
      placed.push(
        i % cancelEvery === 0
          ? ((await client.cancelOrder({ id: order.id })).order ?? order)
          : order,
      );
    }
    return placed;
  }

  test("status lists only the orders in that status, newest first, and total_size counts them", async () => {
    const { client } = setup();
    const placed = [
      ...(await placeOrders(client, alice, 5, 2)),
      ...(await placeOrders(client, bob, 3, 3)),
    ];
    for (const status of [OrderStatus.CONFIRMED, OrderStatus.CANCELLED]) {
      for (const userId of [undefined, alice, bob]) {
        const expected = placed
          .filter(
            (order) => order.status === status && (userId === undefined || order.userId === userId),
          )
          .map((order) => order.id)
          .reverse();
        const listed = [];
        let pageToken = "";
        do {
          const page = await client.listOrders({ userId, status, pageSize: 2, pageToken });
          assert.equal(page.totalSize, expected.length);
          listed.push(...page.orders.map((order) => order.id));
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        assert.deepEqual(listed, expected, `${OrderStatus[status]} of ${userId ?? "everyone"}`);
      }
    }
    assert.equal((await client.listOrders({})).totalSize, placed.length);
  });

  test("a customer's total_size counts only their own orders, also without a user_id", async () => {
    const { client, clientAs } = setup();
    const ofAlice = await placeOrders(client, alice, 3, 2);
    await placeOrders(client, bob, 4, 2);
    const asAlice = clientAs(customer(alice));
    const all = await asAlice.listOrders({});
    assert.equal(all.totalSize, ofAlice.length);
    assert.deepEqual(
      all.orders.map((order) => order.userId),
      ofAlice.map(() => alice),
    );
    const cancelled = await asAlice.listOrders({ status: OrderStatus.CANCELLED });
    assert.equal(
      cancelled.totalSize,
      ofAlice.filter((order) => order.status === OrderStatus.CANCELLED).length,
    );
    await expectCode(asAlice.listOrders({ userId: bob }), Code.PermissionDenied);
  });

  for (const status of [OrderStatus.UNSPECIFIED, 7 as OrderStatus]) {
    test(`status ${status}, which is no status to list, is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.listOrders({ status }), Code.InvalidArgument);
    });
  }

  // A token stands for a place in one list: in another one (other orders) it would skip or
  // repeat orders without anyone noticing.
  const filters = [
    {},
    { userId: alice },
    { userId: bob },
    { status: OrderStatus.CONFIRMED },
    { status: OrderStatus.CANCELLED },
    { userId: alice, status: OrderStatus.CONFIRMED },
  ];
  for (const given of filters) {
    for (const reused of filters.filter((other) => other !== given)) {
      test(`a page_token of ${JSON.stringify(given)} sent with ${JSON.stringify(reused)} is invalid_argument`, async () => {
        const { client } = setup();
        await placeOrders(client, alice, 4, 2);
        await placeOrders(client, bob, 4, 2);
        const first = await client.listOrders({ ...given, pageSize: 1 });
        assert.notEqual(first.nextPageToken, "");
        const error = await expectCode(
          client.listOrders({ ...reused, pageSize: 1, pageToken: first.nextPageToken }),
          Code.InvalidArgument,
        );
        assert.match(error.rawMessage, /page_token .*other filters.*first page/);
        const second = await client.listOrders({
          ...given,
          pageSize: 1,
          pageToken: first.nextPageToken,
        });
        assert.equal(second.orders.length, 1);
      });
    }
  }
});

describe("streams", () => {
  test("WatchOrders with a negative start_revision is invalid_argument", async () => {
    const { client } = setup();
    const read = async () => {
      for await (const _ of client.watchOrders({ startRevision: -1n })) return;
    };
    await expectCode(read(), Code.InvalidArgument);
  });

  test("TrackOrders following more than 1000 orders is resource_exhausted", async () => {
    const { client } = setup();
    const requests = createRequestStream<{ addOrderIds: string[] }>();
    // Each message keeps the contract's limit (1000 ids); together they pass the stream's.
    requests.push({ addOrderIds: Array.from({ length: 600 }, () => randomUUID()) });
    requests.push({ addOrderIds: Array.from({ length: 401 }, () => randomUUID()) });
    const read = async () => {
      // Reads past the first (empty) batch until the stream fails, or gives up after 5 s.
      for await (const _ of client.trackOrders(requests, { signal: AbortSignal.timeout(5_000) })) {
      }
    };
    await expectCode(read(), Code.ResourceExhausted);
  });

  test("a repository error inside a stream is internal with a generic message", async () => {
    const { client, orders } = setup();
    orders.failNext(
      "snapshotPage",
      new Error("connection to /var/run/postgresql failed: permission denied"),
    );
    const read = async () => {
      for await (const _ of client.watchOrders({ startRevision: 0n })) return;
    };
    const error = await expectCode(read(), Code.Internal);
    assert.equal(error.rawMessage, "internal error");
  });
});
