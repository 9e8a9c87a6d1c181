// The orders domain with in-memory fakes of its ports (orders, users, stock): who may order what,
// request-id idempotency, what happens to an order and its stock when a step fails (retries and the
// sweeper), cancelling, and following orders.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { createRequestStream, recordStream, waitFor } from "@shop/testing";
import { cancelOrder } from "../src/domain/cancel-order.ts";
import { compensateStaleOrders } from "../src/domain/compensate-stale-orders.ts";
import { createOrder } from "../src/domain/create-order.ts";
import {
  InvalidOrderError,
  OrderNotCancellableError,
  OrderNotFoundError,
  OrderRetryLaterError,
  RequestIdReusedError,
  StockUnavailableError,
  TooManyTrackedError,
  UpstreamUnavailableError,
  UserNotEligibleError,
} from "../src/domain/errors.ts";
import type { RequestedItem } from "../src/domain/order.ts";
import { type TrackBatch, type TrackRequest, trackOrders } from "../src/domain/track-orders.ts";
import {
  createFakeOrderRepository,
  createFakeStockKeeper,
  createFakeUserDirectory,
} from "./fakes.ts";

const alice = randomUUID();
const bob = randomUUID();
const suspended = randomUUID();

type Deps = ReturnType<typeof setup>["deps"];

/** The sweeper's policy in these tests: a pending order is stale after a minute. */
const policy = { pendingTimeoutMs: 60_000, batchSize: 100 };

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
  const levels = () => ({ TEA: deps.stock.stock("TEA"), MUG: deps.stock.stock("MUG") });
  return { deps, levels };
}

const teaAndMug: RequestedItem[] = [
  { sku: "TEA", quantity: 2n },
  { sku: "MUG", quantity: 1n },
];

function isError<T extends Error>(type: abstract new (...args: never[]) => T, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe("createOrder", () => {
  test("prices the items, totals them, confirms the order and holds the stock", async () => {
    const { deps, levels } = setup();
    const order = await createOrder(deps, { userId: alice, items: teaAndMug, requestId: "" });
    assert.equal(order.userId, alice);
    assert.equal(order.status, "confirmed");
    assert.deepEqual(
      order.items.map((item) => [item.sku, item.quantity, item.unitPriceCents]).sort(),
      [
        ["MUG", 1n, 1200n],
        ["TEA", 2n, 500n],
      ],
    );
    assert.equal(order.totalCents, 2n * 500n + 1n * 1200n);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
    assert.deepEqual(
      deps.orders.all().map((stored) => stored.id),
      [order.id],
    );
  });

  test("without a request id, two calls place two orders", async () => {
    const { deps, levels } = setup();
    const request = { userId: alice, items: [{ sku: "TEA", quantity: 1n }], requestId: "" };
    const first = await createOrder(deps, request);
    const second = await createOrder(deps, request);
    assert.notEqual(first.id, second.id);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 3n });
  });

  const ineligible = [
    { name: "a malformed user id", userId: "not-a-uuid", message: /does not exist/ },
    { name: "an empty user id", userId: "", message: /does not exist/ },
    { name: "an unknown user", userId: randomUUID(), message: /does not exist/ },
    { name: "a suspended user", userId: suspended, message: /suspended/ },
  ];
  for (const { name, userId, message } of ineligible) {
    test(`${name} may not order, and nothing is reserved or stored`, async () => {
      const { deps, levels } = setup();
      await assert.rejects(
        createOrder(deps, { userId, items: teaAndMug, requestId: "" }),
        isError(UserNotEligibleError, message),
      );
      assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
      assert.equal(deps.orders.all().length, 0);
      assert.equal(deps.orders.unacknowledged(), 0);
    });
  }

  const invalid: { name: string; items: RequestedItem[]; message: RegExp }[] = [
    { name: "no items", items: [], message: /at least one item/ },
    {
      name: "a quantity of 0",
      items: [
        { sku: "TEA", quantity: 1n },
        { sku: "MUG", quantity: 0n },
      ],
      message: /items\[1\]\.quantity/,
    },
    { name: "a negative quantity", items: [{ sku: "TEA", quantity: -1n }], message: /quantity/ },
    {
      name: "a duplicate sku",
      items: [
        { sku: "TEA", quantity: 1n },
        { sku: "TEA", quantity: 1n },
      ],
      message: /TEA appears more than once/,
    },
    { name: "an empty sku", items: [{ sku: " ", quantity: 1n }], message: /sku/ },
  ];
  for (const { name, items, message } of invalid) {
    test(`${name} is an invalid order, and nothing is reserved or stored`, async () => {
      const { deps, levels } = setup();
      await assert.rejects(
        createOrder(deps, { userId: alice, items, requestId: "" }),
        isError(InvalidOrderError, message),
      );
      assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
      assert.equal(deps.orders.all().length, 0);
      assert.equal(deps.orders.unacknowledged(), 0);
    });
  }

  for (const requestId of ["not-a-uuid", "12345", `${randomUUID()}x`]) {
    test(`the malformed request id ${JSON.stringify(requestId)} is an invalid order`, async () => {
      const { deps, levels } = setup();
      await assert.rejects(
        createOrder(deps, { userId: alice, items: teaAndMug, requestId }),
        isError(InvalidOrderError, /request_id/),
      );
      assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
    });
  }

  test("the same request id twice returns the same order and reserves once", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    const first = await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
    // The repeat lists the items in another order: still the same request.
    const again = await createOrder(deps, {
      userId: alice,
      items: [...teaAndMug].reverse(),
      requestId,
    });
    assert.deepEqual(again, first);
    assert.equal(first.requestId, requestId);
    assert.equal(deps.orders.all().length, 1);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });

  test("concurrent repeats of one request id make one order and reserve once", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    const orders = await Promise.all(
      Array.from({ length: 5 }, () =>
        createOrder(deps, { userId: alice, items: teaAndMug, requestId }),
      ),
    );
    assert.equal(new Set(orders.map((order) => order.id)).size, 1);
    assert.equal(deps.orders.all().length, 1);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });

  test("the same request id with other items is refused and changes nothing", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
    await assert.rejects(
      createOrder(deps, { userId: alice, items: [{ sku: "TEA", quantity: 2n }], requestId }),
      isError(RequestIdReusedError, new RegExp(requestId)),
    );
    await assert.rejects(
      createOrder(deps, { userId: bob, items: teaAndMug, requestId }),
      RequestIdReusedError,
    );
    assert.equal(deps.orders.all().length, 1);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });

  test("a reused request id racing the first call never gives back the first order's stock", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    const outcomes = await Promise.allSettled([
      createOrder(deps, { userId: alice, items: teaAndMug, requestId }),
      createOrder(deps, { userId: bob, items: teaAndMug, requestId }),
    ]);
    const placed = outcomes.filter((outcome) => outcome.status === "fulfilled");
    const refused = outcomes.filter((outcome) => outcome.status === "rejected");
    assert.equal(placed.length, 1);
    assert.equal(refused.length, 1);
    assert.ok(refused[0]?.reason instanceof RequestIdReusedError, String(refused[0]?.reason));
    assert.equal(deps.orders.all()[0]?.status, "confirmed");
    // The stored order still holds its stock.
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });

  test("short stock is refused and nothing is recorded", async () => {
    const { deps, levels } = setup();
    await assert.rejects(
      createOrder(deps, {
        userId: alice,
        items: [
          { sku: "TEA", quantity: 1n },
          { sku: "MUG", quantity: 4n },
        ],
        requestId: randomUUID(),
      }),
      isError(StockUnavailableError, /MUG/),
    );
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
    assert.equal(deps.orders.all().length, 0);
    assert.equal(deps.orders.unacknowledged(), 0);
  });

  test("a users service that is down is reported as such, and nothing is recorded or reserved", async () => {
    const { deps, levels } = setup();
    deps.users.failNext(
      new UpstreamUnavailableError("the users service is unavailable", { timedOut: false }),
    );
    await assert.rejects(
      createOrder(deps, { userId: alice, items: teaAndMug, requestId: "" }),
      UpstreamUnavailableError,
    );
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
    assert.equal(deps.orders.all().length, 0);
    assert.equal(deps.orders.unacknowledged(), 0);
  });

  describe("when a step fails after the order is recorded", () => {
    const failures = [
      {
        step: "storing the confirmation",
        fail: (deps: Deps) => deps.orders.failNext("confirm", new Error("the database went away")),
      },
      {
        step: "reserving (the inventory is down)",
        fail: (deps: Deps) =>
          deps.stock.failNext(
            "reserve",
            new UpstreamUnavailableError("the inventory service is unavailable", {
              timedOut: false,
            }),
          ),
      },
    ];
    for (const { step, fail } of failures) {
      test(`${step}: a retry with the same request id places the order once`, async () => {
        const { deps, levels } = setup();
        const requestId = randomUUID();
        fail(deps);
        await assert.rejects(createOrder(deps, { userId: alice, items: teaAndMug, requestId }));
        assert.equal(deps.orders.all().length, 0, "an unconfirmed order is visible");
        const order = await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
        assert.equal(order.status, "confirmed");
        assert.deepEqual(
          deps.orders.all().map((stored) => stored.id),
          [order.id],
        );
        assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
      });

      test(`${step}: with no retry, the sweeper gives the stock back and forgets the order`, async () => {
        const { deps, levels } = setup();
        const requestId = randomUUID();
        fail(deps);
        await assert.rejects(createOrder(deps, { userId: alice, items: teaAndMug, requestId }));
        // Not yet stale: the call may still be under way on another replica.
        assert.deepEqual(await compensateStaleOrders(deps, policy), {
          compensated: [],
          failed: [],
        });
        deps.orders.advance(policy.pendingTimeoutMs + 1);
        const swept = await compensateStaleOrders(deps, policy);
        assert.equal(swept.compensated.length, 1);
        assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
        assert.equal(deps.orders.unacknowledged(), 0);
        // The request id is free again: a late retry places the order anew, holding stock once.
        await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
        assert.equal(deps.orders.all().length, 1);
        assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
      });
    }
  });

  test("rolled back by the sweeper mid-call, the call says retry and holds nothing", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    // The sweeper runs while the call waits for the inventory (a very slow reservation).
    const racing: Deps = {
      ...deps,
      stock: {
        ...deps.stock,
        async reserve(orderId, items) {
          const prices = await deps.stock.reserve(orderId, items);
          deps.orders.advance(policy.pendingTimeoutMs + 1);
          await compensateStaleOrders(deps, policy);
          return prices;
        },
      },
    };
    await assert.rejects(
      createOrder(racing, { userId: alice, items: teaAndMug, requestId }),
      OrderRetryLaterError,
    );
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
    assert.equal(deps.orders.all().length, 0);
    assert.equal(deps.orders.unacknowledged(), 0);
    const order = await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
    assert.equal(order.status, "confirmed");
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });

  test("while an earlier attempt is being rolled back, a retry is told to come back later", async () => {
    const { deps, levels } = setup();
    const requestId = randomUUID();
    deps.orders.failNext("confirm", new Error("the database went away"));
    await assert.rejects(createOrder(deps, { userId: alice, items: teaAndMug, requestId }));
    deps.orders.advance(policy.pendingTimeoutMs + 1);
    // The inventory is down during the sweep: the rollback stays claimed for the next one.
    deps.stock.failNext(
      "release",
      new UpstreamUnavailableError("inventory down", { timedOut: false }),
    );
    assert.equal((await compensateStaleOrders(deps, policy)).failed.length, 1);
    await assert.rejects(
      createOrder(deps, { userId: alice, items: teaAndMug, requestId }),
      OrderRetryLaterError,
    );
    assert.equal((await compensateStaleOrders(deps, policy)).compensated.length, 1);
    await createOrder(deps, { userId: alice, items: teaAndMug, requestId });
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });
});

describe("compensateStaleOrders", () => {
  test("leaves confirmed orders and their stock alone", async () => {
    const { deps, levels } = setup();
    await createOrder(deps, { userId: alice, items: teaAndMug, requestId: randomUUID() });
    deps.orders.advance(policy.pendingTimeoutMs * 10);
    assert.deepEqual(await compensateStaleOrders(deps, policy), { compensated: [], failed: [] });
    assert.equal(deps.orders.all().length, 1);
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
  });
});

describe("cancelOrder", () => {
  async function placed() {
    const context = setup();
    const order = await createOrder(context.deps, {
      userId: alice,
      items: teaAndMug,
      requestId: "",
    });
    return { ...context, order };
  }

  test("gives the stock back and marks the order cancelled; a second cancel is refused", async () => {
    const { deps, levels, order } = await placed();
    const cancelled = await cancelOrder(deps, order.id);
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.version, order.version + 1n);
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
    await assert.rejects(
      cancelOrder(deps, order.id),
      isError(OrderNotCancellableError, /cancelled/),
    );
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
  });

  for (const id of [randomUUID(), "", "not-a-uuid"]) {
    test(`${JSON.stringify(id.slice(0, 10))} is not found`, async () => {
      const { deps } = await placed();
      await assert.rejects(cancelOrder(deps, id), OrderNotFoundError);
    });
  }

  test("when the stock cannot be given back, the order stays confirmed and a retry completes", async () => {
    const { deps, levels, order } = await placed();
    deps.stock.failNext(
      "release",
      new UpstreamUnavailableError("inventory down", { timedOut: false }),
    );
    await assert.rejects(cancelOrder(deps, order.id), UpstreamUnavailableError);
    // Had the order been marked cancelled first, its stock would now be held for good.
    assert.equal((await deps.orders.get(order.id))?.status, "confirmed");
    assert.deepEqual(levels(), { TEA: 8n, MUG: 2n });
    await cancelOrder(deps, order.id);
    assert.equal((await deps.orders.get(order.id))?.status, "cancelled");
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
  });

  test("when marking fails after the release, a retry completes without releasing twice", async () => {
    const { deps, levels, order } = await placed();
    deps.orders.failNext("cancel", new Error("the database went away"));
    await assert.rejects(cancelOrder(deps, order.id), /database went away/);
    assert.equal((await deps.orders.get(order.id))?.status, "confirmed");
    await cancelOrder(deps, order.id);
    assert.equal((await deps.orders.get(order.id))?.status, "cancelled");
    assert.deepEqual(levels(), { TEA: 10n, MUG: 3n });
  });
});

describe("trackOrders", () => {
  /** Starts tracking with a request stream the test writes to, reading batches in the background. */
  async function tracking() {
    const context = setup();
    const place = (userId: string) =>
      createOrder(context.deps, { userId, items: [{ sku: "TEA", quantity: 1n }], requestId: "" });
    const [a, b] = [await place(alice), await place(bob)];
    const requests = createRequestStream<TrackRequest>();
    const controller = new AbortController();
    const batches = recordStream(trackOrders(context.deps.orders, requests, controller.signal));
    const events = () => batches.messages.flatMap((batch) => batch.events);
    /** Sends a request and waits for the batch that answers it (the one with its snapshots). */
    const send = async (request: Partial<TrackRequest>) => {
      const answered = batches.messages.length;
      requests.push({ add: [], remove: [], ...request });
      return waitFor(
        () => batches.messages.slice(answered).find((batch) => isAnswer(batch, request)),
        { message: `the answer to ${JSON.stringify(request)}` },
      );
    };
    return { ...context, a, b, requests, controller, batches, events, send };
  }

  // The answer to a request is the batch that reports each added id, as a snapshot or as unknown;
  // a request that adds nothing is answered by the next batch (no other changes are happening).
  const isAnswer = (batch: TrackBatch, request: Partial<TrackRequest>) =>
    (request.add ?? []).every(
      (id) =>
        batch.unknownIds.includes(id) ||
        batch.events.some((event) => event.type === "snapshot" && event.order.id === id),
    );

  test("an added order is sent as a snapshot; unknown ids are reported", async () => {
    const { a, send, requests, batches } = await tracking();
    const unknown = randomUUID();
    const answer = await send({ add: [a.id, unknown, "not-a-uuid"] });
    assert.deepEqual(
      answer.events.map((event) => [event.type, event.order.id, event.order.status]),
      [["snapshot", a.id, "confirmed"]],
    );
    assert.deepEqual(answer.unknownIds.sort(), [unknown, "not-a-uuid"].sort());
    requests.close();
    await batches.ended;
    assert.equal(batches.error, undefined);
  });

  test("later changes of tracked orders arrive; changes of untracked orders do not", async () => {
    const { deps, a, b, send, events, controller, batches } = await tracking();
    await send({ add: [a.id] });
    await cancelOrder(deps, b.id);
    await cancelOrder(deps, a.id);
    const change = await waitFor(
      () => events().find((e) => e.type === "updated" && e.order.id === a.id),
      {
        message: "the cancellation of the tracked order",
      },
    );
    assert.equal(change.order.status, "cancelled");
    assert.ok(
      !events().some((event) => event.order.id === b.id),
      "an untracked order's change was sent",
    );
    controller.abort();
    await batches.ended;
  });

  test("removing an id stops its events", async () => {
    const { deps, a, b, send, events, controller, batches } = await tracking();
    await send({ add: [a.id, b.id] });
    await send({ remove: [a.id] });
    const seenBefore = events().length;
    await cancelOrder(deps, a.id);
    await cancelOrder(deps, b.id);
    await waitFor(() => events().find((e) => e.type === "updated" && e.order.id === b.id), {
      message: "the cancellation of the order still tracked",
    });
    assert.ok(
      !events()
        .slice(seenBefore)
        .some((event) => event.order.id === a.id),
      "a removed order's change was sent",
    );
    controller.abort();
    await batches.ended;
  });

  test("an order added after it changed is sent as it is now, then only newer changes", async () => {
    const { deps, a, b, send, events, controller, batches } = await tracking();
    await cancelOrder(deps, a.id);
    const answer = await send({ add: [a.id] });
    assert.deepEqual(
      answer.events.map((event) => [event.type, event.order.status]),
      [["snapshot", "cancelled"]],
    );
    // Changes arrive in revision order: once b's later cancellation is here, a's cancellation
    // has been dealt with, and it was not sent again, as the snapshot already showed it.
    await send({ add: [b.id] });
    await cancelOrder(deps, b.id);
    await waitFor(() => events().find((e) => e.type === "updated" && e.order.id === b.id), {
      message: "the cancellation of the second order",
    });
    assert.ok(!events().some((event) => event.type === "updated" && event.order.id === a.id));
    controller.abort();
    await batches.ended;
  });

  test("ends when the client closes its side or the signal aborts", async () => {
    const first = await tracking();
    first.requests.close();
    await first.batches.ended;
    const second = await tracking();
    await second.send({ add: [second.a.id] });
    second.controller.abort();
    await second.batches.ended;
    assert.equal(second.batches.error, undefined);
  });

  test("following more than 1000 orders at once is refused", async () => {
    const { requests, batches } = await tracking();
    requests.push({ add: Array.from({ length: 1001 }, () => randomUUID()), remove: [] });
    await batches.ended;
    assert.ok(batches.error instanceof TooManyTrackedError, String(batches.error));
  });
});
