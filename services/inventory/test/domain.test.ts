// The inventory domain with an in-memory repository: what a reservation or an adjustment accepts,
// and that a refused request leaves the stock as it was.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InvalidStartRevisionError } from "@shop/mesh/watch";
import { adjustStock } from "../src/domain/adjust-stock.ts";
import {
  InsufficientStockError,
  InvalidInventoryRequestError,
  ProductNotFoundError,
  ReservationConflictError,
  ReservationReleasedError,
} from "../src/domain/errors.ts";
import { getProduct } from "../src/domain/get-product.ts";
import type { NewProduct, ProductEvent, StockItem } from "../src/domain/product.ts";
import { releaseStock } from "../src/domain/release-stock.ts";
import { reserveStock } from "../src/domain/reserve-stock.ts";
import { watchStock } from "../src/domain/watch-stock.ts";
import { createFakeInventoryRepository } from "./fake-inventory-repository.ts";

const catalog: NewProduct[] = [
  { sku: "TEA", name: "Tea", priceCents: 500n, stock: 10n },
  { sku: "MUG", name: "Mug", priceCents: 1200n, stock: 3n },
];

function stockOf(repo: ReturnType<typeof createFakeInventoryRepository>) {
  return Object.fromEntries(catalog.map(({ sku }) => [sku, repo.product(sku)?.stock]));
}

function invalid(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(
      error instanceof InvalidInventoryRequestError,
      `expected InvalidInventoryRequestError, got ${String(error)}`,
    );
    assert.match(error.message, pattern);
    return true;
  };
}

describe("reserveStock", () => {
  const refused: { name: string; orderId: string; items: StockItem[]; message: RegExp }[] = [
    { name: "no items", orderId: "order-1", items: [], message: /items must not be empty/ },
    {
      name: "a quantity of 0",
      orderId: "order-1",
      items: [
        { sku: "TEA", quantity: 1n },
        { sku: "MUG", quantity: 0n },
      ],
      message: /items\[1\]\.quantity/,
    },
    {
      name: "a negative quantity",
      orderId: "order-1",
      items: [{ sku: "TEA", quantity: -2n }],
      message: /items\[0\]\.quantity/,
    },
    {
      name: "a repeated sku",
      orderId: "order-1",
      items: [
        { sku: "TEA", quantity: 1n },
        { sku: "TEA", quantity: 2n },
      ],
      message: /TEA appears more than once/,
    },
    {
      name: "an empty order id",
      orderId: "",
      items: [{ sku: "TEA", quantity: 1n }],
      message: /order_id/,
    },
    {
      name: "a malformed order id",
      orderId: "order 1; drop table",
      items: [{ sku: "TEA", quantity: 1n }],
      message: /order_id/,
    },
    {
      name: "an order id longer than 64 characters",
      orderId: "x".repeat(65),
      items: [{ sku: "TEA", quantity: 1n }],
      message: /order_id/,
    },
  ];
  for (const { name, orderId, items, message } of refused) {
    test(`refuses ${name} and reserves nothing`, async () => {
      const repo = createFakeInventoryRepository(catalog);
      await assert.rejects(reserveStock(repo, { orderId, items }), invalid(message));
      assert.deepEqual(stockOf(repo), { TEA: 10n, MUG: 3n });
      assert.equal(repo.reservations().size, 0);
    });
  }

  test("holds every item and reports the products after the reservation", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const { reservation, products } = await reserveStock(repo, {
      orderId: "order-1",
      items: [
        { sku: "TEA", quantity: 4n },
        { sku: "MUG", quantity: 1n },
      ],
    });
    assert.equal(reservation.status, "held");
    assert.deepEqual(stockOf(repo), { TEA: 6n, MUG: 2n });
    assert.deepEqual(Object.fromEntries(products.map((p) => [p.sku, [p.stock, p.reserved]])), {
      TEA: [6n, 4n],
      MUG: [2n, 1n],
    });
  });

  test("the same reservation again, items in another order, changes stock once", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const items = [
      { sku: "TEA", quantity: 4n },
      { sku: "MUG", quantity: 1n },
    ];
    await reserveStock(repo, { orderId: "order-1", items });
    const again = await reserveStock(repo, { orderId: "order-1", items: [...items].reverse() });
    assert.equal(again.reservation.status, "held");
    assert.deepEqual(stockOf(repo), { TEA: 6n, MUG: 2n });
  });

  test("other items for an order that holds a reservation are a conflict", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await reserveStock(repo, { orderId: "order-1", items: [{ sku: "TEA", quantity: 1n }] });
    await assert.rejects(
      reserveStock(repo, { orderId: "order-1", items: [{ sku: "TEA", quantity: 2n }] }),
      ReservationConflictError,
    );
    assert.deepEqual(stockOf(repo), { TEA: 9n, MUG: 3n });
  });

  test("a sku that cannot exist is not found without asking the repository", async () => {
    const repo = createFakeInventoryRepository(catalog);
    repo.failNext("reserve", new Error("the repository must not be asked"));
    await assert.rejects(
      reserveStock(repo, {
        orderId: "order-1",
        items: [
          { sku: "TEA", quantity: 1n },
          { sku: "lower case", quantity: 1n },
        ],
      }),
      (error: unknown) => error instanceof ProductNotFoundError && error.sku === "lower case",
    );
    assert.deepEqual(stockOf(repo), { TEA: 10n, MUG: 3n });
  });

  test("short stock of one item reserves none of them", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await assert.rejects(
      reserveStock(repo, {
        orderId: "order-1",
        items: [
          { sku: "TEA", quantity: 1n },
          { sku: "MUG", quantity: 4n },
        ],
      }),
      (error: unknown) => error instanceof InsufficientStockError && error.sku === "MUG",
    );
    assert.deepEqual(stockOf(repo), { TEA: 10n, MUG: 3n });
  });
});

describe("releaseStock", () => {
  test("gives the stock back once, however often it is called", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await reserveStock(repo, { orderId: "order-1", items: [{ sku: "TEA", quantity: 4n }] });
    const first = await releaseStock(repo, { orderId: "order-1" });
    const second = await releaseStock(repo, { orderId: "order-1" });
    assert.equal(first?.status, "released");
    assert.equal(second?.status, "released");
    assert.deepEqual(stockOf(repo), { TEA: 10n, MUG: 3n });
  });

  test("a released reservation cannot be held again", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const items = [{ sku: "TEA", quantity: 4n }];
    await reserveStock(repo, { orderId: "order-1", items });
    await releaseStock(repo, { orderId: "order-1" });
    await assert.rejects(
      reserveStock(repo, { orderId: "order-1", items }),
      ReservationReleasedError,
    );
    assert.deepEqual(stockOf(repo), { TEA: 10n, MUG: 3n });
  });

  test("an order that never reserved gets nothing back", async () => {
    const repo = createFakeInventoryRepository(catalog);
    assert.equal(await releaseStock(repo, { orderId: "order-1" }), undefined);
  });

  test("refuses a malformed order id", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await assert.rejects(releaseStock(repo, { orderId: "" }), invalid(/order_id/));
  });
});

describe("adjustStock", () => {
  test("refuses a delta of 0 and changes nothing", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await assert.rejects(adjustStock(repo, { sku: "TEA", delta: 0n }), invalid(/delta/));
    assert.equal(repo.product("TEA")?.version, 1n);
  });

  test("adds and takes stock, never below zero", async () => {
    const repo = createFakeInventoryRepository(catalog);
    assert.equal((await adjustStock(repo, { sku: "MUG", delta: 5n })).stock, 8n);
    assert.equal((await adjustStock(repo, { sku: "MUG", delta: -8n })).stock, 0n);
    await assert.rejects(adjustStock(repo, { sku: "MUG", delta: -1n }), InsufficientStockError);
    assert.equal(repo.product("MUG")?.stock, 0n);
  });

  test("an unknown or malformed sku is not found", async () => {
    const repo = createFakeInventoryRepository(catalog);
    await assert.rejects(adjustStock(repo, { sku: "NOPE", delta: 1n }), ProductNotFoundError);
    await assert.rejects(adjustStock(repo, { sku: "", delta: 1n }), ProductNotFoundError);
  });
});

describe("getProduct", () => {
  for (const sku of ["NOPE", "", "tea", "'; --"]) {
    test(`${JSON.stringify(sku)} is not found`, async () => {
      const repo = createFakeInventoryRepository(catalog);
      await assert.rejects(
        getProduct(repo, sku),
        (error: unknown) => error instanceof ProductNotFoundError && error.sku === sku,
      );
    });
  }
});

describe("watchStock", () => {
  const eventsOf = (batches: { events: ProductEvent[] }[]) => batches.flatMap((b) => b.events);

  test("a negative start revision is refused", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const watch = watchStock(repo, { startRevision: -1n, signal: new AbortController().signal });
    await assert.rejects(watch.next(), InvalidStartRevisionError);
  });

  test("from 0: the catalog as snapshot events, then the changes of a reservation", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const controller = new AbortController();
    const watch = watchStock(repo, { startRevision: 0n, signal: controller.signal });
    const first = await watch.next();
    assert.ok(!first.done);
    assert.deepEqual(
      first.value.events.map((event) => [event.type, event.product.sku]),
      [
        ["snapshot", "MUG"],
        ["snapshot", "TEA"],
      ],
    );
    await reserveStock(repo, { orderId: "order-1", items: [{ sku: "MUG", quantity: 2n }] });
    const seen: { events: ProductEvent[] }[] = [];
    while (eventsOf(seen).length === 0) {
      const next = await watch.next();
      assert.ok(!next.done);
      seen.push(next.value);
    }
    const [change] = eventsOf(seen);
    assert.equal(change?.type, "updated");
    assert.equal(change?.product.sku, "MUG");
    assert.equal(change?.product.stock, 1n);
    assert.ok((change?.revision ?? 0n) > first.value.revision);
    controller.abort();
  });

  test("ends when its signal aborts", async () => {
    const repo = createFakeInventoryRepository(catalog);
    const controller = new AbortController();
    const watch = watchStock(repo, { startRevision: 2n, signal: controller.signal });
    await watch.next();
    const pending = watch.next();
    controller.abort();
    assert.equal((await pending).done, true);
  });
});
