// The inventory service as it runs: a real server on a free port over a real PostgreSQL, seeded
// with the demo catalog, called by independent clients over each protocol.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventType, ReservationStatus } from "@shop/api/shop/inventory/v1/inventory_pb";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import type { RunningService } from "@shop/mesh";
import {
  createTestDatabase,
  expectCode,
  protocols,
  readMetric,
  recordStream,
  startTestService,
  type TestDatabase,
  waitFor,
} from "@shop/testing";
import { inventoryService } from "../src/app.ts";
import { demoCatalog } from "../src/domain/demo-catalog.ts";

let database: TestDatabase;
let service: RunningService;
let client: ReturnType<typeof createClient<typeof InventoryService>>;

before(async () => {
  database = await createTestDatabase();
  service = await startTestService(inventoryService({ seedDemoCatalog: true }), database.url);
  client = createClient(InventoryService, createGrpcTransport({ baseUrl: service.server.url }));
});
after(async () => {
  await service.stop(100);
  await database.drop();
});

/** The stock and reserved units of each sku, as the service reports them now. */
async function levels(...skus: string[]): Promise<Record<string, readonly [bigint, bigint]>> {
  const entries = await Promise.all(
    skus.map(async (sku) => {
      const { product } = await client.getProduct({ sku });
      assert.ok(product, `product ${sku}`);
      return [sku, [product.stock, product.reserved]] as const;
    }),
  );
  return Object.fromEntries(entries);
}

test("the demo catalog is seeded on first start", async () => {
  const { products, revision } = await client.listProducts({ pageSize: 1000 });
  assert.deepEqual(
    products.map((product) => product.sku).sort(),
    demoCatalog.map((product) => product.sku).sort(),
  );
  assert.ok(revision > 0n, `revision ${revision}`);
  assert.ok(products.every((product) => product.stock > 0n && product.priceCents > 0n));
});

test("reserving twice for one order changes stock once; releasing twice gives it back once", async () => {
  const orderId = randomUUID();
  const items = [
    { sku: "TEA-GREEN-100G", quantity: 3n },
    { sku: "MUG-CERAMIC", quantity: 2n },
  ];
  const before = await levels("TEA-GREEN-100G", "MUG-CERAMIC");

  const first = await client.reserveStock({ orderId, items });
  const second = await client.reserveStock({ orderId, items });
  assert.equal(second.reservation?.status, ReservationStatus.HELD);
  const held = await levels("TEA-GREEN-100G", "MUG-CERAMIC");
  assert.deepEqual(held, {
    "TEA-GREEN-100G": [
      (before["TEA-GREEN-100G"]?.[0] ?? 0n) - 3n,
      (before["TEA-GREEN-100G"]?.[1] ?? 0n) + 3n,
    ],
    "MUG-CERAMIC": [
      (before["MUG-CERAMIC"]?.[0] ?? 0n) - 2n,
      (before["MUG-CERAMIC"]?.[1] ?? 0n) + 2n,
    ],
  });
  assert.deepEqual(
    first.products.map((product) => product.stock),
    second.products.map((product) => product.stock),
  );

  const released = await client.releaseStock({ orderId });
  await client.releaseStock({ orderId });
  assert.equal(released.reservation?.status, ReservationStatus.RELEASED);
  assert.deepEqual(await levels("TEA-GREEN-100G", "MUG-CERAMIC"), before);
  // A late repeat of the reservation cannot take the stock again once it was given back.
  await expectCode(client.reserveStock({ orderId, items }), Code.Aborted);
  assert.deepEqual(await levels("TEA-GREEN-100G", "MUG-CERAMIC"), before);
});

test("a reservation that arrives after its order was released without one is refused", async () => {
  // The orders sweeper rolls back a saga whose reserve is still on its way: the late reserve must
  // not hold stock for an order that no longer exists.
  const orderId = randomUUID();
  const items = [{ sku: "TEA-GREEN-100G", quantity: 1n }];
  const before = await levels("TEA-GREEN-100G");
  await client.releaseStock({ orderId });
  await expectCode(client.reserveStock({ orderId, items }), Code.Aborted);
  assert.deepEqual(await levels("TEA-GREEN-100G"), before);
});

test("concurrent reservations for one order hold the stock once", async () => {
  const orderId = randomUUID();
  const items = [{ sku: "FILTER-PAPER-100", quantity: 7n }];
  const before = await levels("FILTER-PAPER-100");
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => client.reserveStock({ orderId, items })),
  );
  assert.ok(answers.every((answer) => answer.reservation?.status === ReservationStatus.HELD));
  const [stock, reserved] = before["FILTER-PAPER-100"] ?? [0n, 0n];
  assert.deepEqual(await levels("FILTER-PAPER-100"), {
    "FILTER-PAPER-100": [stock - 7n, reserved + 7n],
  });
});

test("short stock is failed_precondition and reserves none of the items", async () => {
  const orderId = randomUUID();
  const before = await levels("COFFEE-BEANS-1KG", "KETTLE-STEEL");
  const kettles = before["KETTLE-STEEL"]?.[0] ?? 0n;
  // Items are reserved in sku order, so the coffee is taken before the kettles turn out short.
  const error = await expectCode(
    client.reserveStock({
      orderId,
      items: [
        { sku: "COFFEE-BEANS-1KG", quantity: 1n },
        { sku: "KETTLE-STEEL", quantity: kettles + 1n },
      ],
    }),
    Code.FailedPrecondition,
  );
  assert.match(error.rawMessage, /KETTLE-STEEL/);
  assert.deepEqual(await levels("COFFEE-BEANS-1KG", "KETTLE-STEEL"), before);
  // Nothing is held for the order either: a reservation it can afford still goes through.
  const retry = await client.reserveStock({
    orderId,
    items: [{ sku: "COFFEE-BEANS-1KG", quantity: 1n }],
  });
  assert.equal(retry.reservation?.status, ReservationStatus.HELD);
  await client.releaseStock({ orderId });
});

test("WatchStock from a ListProducts revision receives the change a reservation makes", async () => {
  const { revision } = await client.listProducts({});
  const controller = new AbortController();
  const watch = recordStream(
    client.watchStock({ startRevision: revision }, { signal: controller.signal }),
  );
  try {
    await waitFor(() => watch.messages.length > 0, { message: "the first response" });
    const orderId = randomUUID();
    const { products } = await client.reserveStock({
      orderId,
      items: [{ sku: "HONEY-JAR-250G", quantity: 2n }],
    });
    const expected = products[0]?.stock;
    const event = await waitFor(
      () =>
        watch.messages
          .flatMap((message) => message.events)
          .find((event) => event.product?.sku === "HONEY-JAR-250G"),
      { message: "the reservation's stock change" },
    );
    assert.equal(event.type, EventType.UPDATED);
    assert.equal(event.product?.stock, expected);
    assert.ok(event.revision > revision);
    const revisions = watch.messages.flatMap((message) => message.events.map((e) => e.revision));
    assert.deepEqual(
      revisions,
      [...revisions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  } finally {
    controller.abort();
  }
  await watch.ended;
  // The server's handler ends too once the client has gone away.
  await waitFor(
    async () =>
      (await readMetric(service.server.url, "rpc_server_duration_seconds_count", {
        rpc_method: "WatchStock",
      })) >= 1,
    { message: "the WatchStock handler ends when the client cancels" },
  );
});

describe("error codes over every protocol", () => {
  for (const protocol of protocols) {
    describe(protocol.name, () => {
      const clientOf = () => createClient(InventoryService, protocol.transport(service.server.url));

      test("GetProduct of an unknown sku is not_found", async () => {
        await expectCode(clientOf().getProduct({ sku: "NO-SUCH-SKU" }), Code.NotFound);
      });

      test("ReserveStock with no items is invalid_argument", async () => {
        await expectCode(
          clientOf().reserveStock({ orderId: randomUUID(), items: [] }),
          Code.InvalidArgument,
        );
      });

      test("ReserveStock beyond the stock is failed_precondition", async () => {
        await expectCode(
          clientOf().reserveStock({
            orderId: randomUUID(),
            items: [{ sku: "KETTLE-STEEL", quantity: 10_000n }],
          }),
          Code.FailedPrecondition,
        );
      });

      test("AdjustStock by 0 is invalid_argument, below zero failed_precondition", async () => {
        const rpc = clientOf();
        await expectCode(rpc.adjustStock({ sku: "KETTLE-STEEL", delta: 0n }), Code.InvalidArgument);
        await expectCode(
          rpc.adjustStock({ sku: "KETTLE-STEEL", delta: -10_000n }),
          Code.FailedPrecondition,
        );
      });

      test("ListProducts with a forged page_token is invalid_argument", async () => {
        await expectCode(clientOf().listProducts({ pageToken: "forged" }), Code.InvalidArgument);
      });
    });
  }
});
