// InventoryService's handlers through an in-memory Connect transport, with the mesh's error
// interceptor in front as in production: the code a client sees for each domain outcome.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { ReservationStatus } from "@shop/api/shop/inventory/v1/inventory_pb";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import {
  createContractValidator,
  createErrorInterceptor,
  createLogger,
  createValidationInterceptor,
} from "@shop/mesh";
import { expectCode } from "@shop/testing";
import type { NewProduct } from "../src/domain/product.ts";
import { inventoryRoutes } from "../src/transport/routes.ts";
import { createFakeInventoryRepository } from "./fake-inventory-repository.ts";

const catalog: NewProduct[] = [
  { sku: "TEA", name: "Tea", priceCents: 500n, stock: 10n },
  { sku: "MUG", name: "Mug", priceCents: 1200n, stock: 3n },
];

function setup() {
  const repo = createFakeInventoryRepository(catalog);
  const transport = createRouterTransport(inventoryRoutes(repo), {
    router: {
      interceptors: [
        createErrorInterceptor(createLogger("inventory-test", "silent")),
        createValidationInterceptor(createContractValidator([InventoryService.file])),
      ],
    },
  });
  return { repo, client: createClient(InventoryService, transport) };
}

describe("GetProduct", () => {
  test("returns the product with its price and stock", async () => {
    const { client } = setup();
    const { product } = await client.getProduct({ sku: "MUG" });
    assert.equal(product?.priceCents, 1200n);
    assert.equal(product?.stock, 3n);
  });

  test("an unknown sku is not_found", async () => {
    const { client } = setup();
    await expectCode(client.getProduct({ sku: "NOPE" }), Code.NotFound);
  });

  for (const sku of ["", "mug"]) {
    test(`${JSON.stringify(sku)}, which is no sku, is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.getProduct({ sku }), Code.InvalidArgument);
    });
  }
});

describe("ReserveStock", () => {
  test("short stock is failed_precondition naming the product, and nothing is held", async () => {
    const { client, repo } = setup();
    const error = await expectCode(
      client.reserveStock({
        orderId: "order-1",
        items: [
          { sku: "TEA", quantity: 1n },
          { sku: "MUG", quantity: 4n },
        ],
      }),
      Code.FailedPrecondition,
    );
    assert.match(error.rawMessage, /MUG/);
    assert.equal(repo.product("TEA")?.stock, 10n);
    assert.equal(repo.reservations().size, 0);
  });

  test("other items for an order that holds a reservation are failed_precondition", async () => {
    const { client } = setup();
    await client.reserveStock({ orderId: "order-1", items: [{ sku: "TEA", quantity: 1n }] });
    await expectCode(
      client.reserveStock({ orderId: "order-1", items: [{ sku: "MUG", quantity: 1n }] }),
      Code.FailedPrecondition,
    );
  });

  test("reserving again after the release is aborted: the order id cannot hold stock again", async () => {
    const { client, repo } = setup();
    const items = [{ sku: "TEA", quantity: 2n }];
    await client.reserveStock({ orderId: "order-1", items });
    await client.releaseStock({ orderId: "order-1" });
    await expectCode(client.reserveStock({ orderId: "order-1", items }), Code.Aborted);
    assert.equal(repo.product("TEA")?.stock, 10n);
  });

  test("an unknown product is not_found", async () => {
    const { client } = setup();
    await expectCode(
      client.reserveStock({ orderId: "order-1", items: [{ sku: "NOPE", quantity: 1n }] }),
      Code.NotFound,
    );
  });

  const invalid = [
    { name: "no items", orderId: "order-1", items: [] },
    { name: "a quantity of 0", orderId: "order-1", items: [{ sku: "TEA", quantity: 0n }] },
    {
      name: "a repeated sku",
      orderId: "order-1",
      items: [
        { sku: "TEA", quantity: 1n },
        { sku: "TEA", quantity: 1n },
      ],
    },
    { name: "an empty order id", orderId: "", items: [{ sku: "TEA", quantity: 1n }] },
  ];
  for (const { name, orderId, items } of invalid) {
    test(`${name} is invalid_argument`, async () => {
      const { client, repo } = setup();
      await expectCode(client.reserveStock({ orderId, items }), Code.InvalidArgument);
      assert.equal(repo.product("TEA")?.stock, 10n);
    });
  }

  test("the same reservation twice answers the same and holds once", async () => {
    const { client, repo } = setup();
    const request = { orderId: "order-1", items: [{ sku: "TEA", quantity: 3n }] };
    const first = await client.reserveStock(request);
    const second = await client.reserveStock(request);
    assert.equal(second.reservation?.status, ReservationStatus.HELD);
    assert.deepEqual(second.products, first.products);
    assert.equal(repo.product("TEA")?.stock, 7n);
  });
});

describe("ReleaseStock", () => {
  test("an empty order id is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.releaseStock({ orderId: "" }), Code.InvalidArgument);
  });

  test("an order that holds nothing gets an empty answer", async () => {
    const { client } = setup();
    const { reservation } = await client.releaseStock({ orderId: "order-1" });
    assert.equal(reservation, undefined);
  });
});

describe("AdjustStock", () => {
  test("a delta of 0 is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.adjustStock({ sku: "TEA", delta: 0n }), Code.InvalidArgument);
  });

  test("taking more than the stock is failed_precondition", async () => {
    const { client, repo } = setup();
    await expectCode(client.adjustStock({ sku: "MUG", delta: -4n }), Code.FailedPrecondition);
    assert.equal(repo.product("MUG")?.stock, 3n);
  });

  test("an unknown product is not_found", async () => {
    const { client } = setup();
    await expectCode(client.adjustStock({ sku: "NOPE", delta: 1n }), Code.NotFound);
  });
});

describe("ListProducts", () => {
  test("pages through the catalog with the token it returns", async () => {
    const { client } = setup();
    const first = await client.listProducts({ pageSize: 1 });
    assert.deepEqual(
      first.products.map((product) => product.sku),
      ["MUG"],
    );
    assert.equal(first.revision, 2n);
    const second = await client.listProducts({ pageSize: 1, pageToken: first.nextPageToken });
    assert.deepEqual(
      second.products.map((product) => product.sku),
      ["TEA"],
    );
    assert.equal(second.nextPageToken, "");
  });

  for (const pageToken of [
    "garbage",
    Buffer.from('{"after":"lower case"}').toString("base64url"),
  ]) {
    test(`page_token ${JSON.stringify(pageToken)} is invalid_argument`, async () => {
      const { client } = setup();
      await expectCode(client.listProducts({ pageToken }), Code.InvalidArgument);
    });
  }

  test("a negative page_size is invalid_argument", async () => {
    const { client } = setup();
    await expectCode(client.listProducts({ pageSize: -1 }), Code.InvalidArgument);
  });
});

describe("WatchStock", () => {
  test("a negative start_revision is invalid_argument", async () => {
    const { client } = setup();
    const read = async () => {
      for await (const _ of client.watchStock({ startRevision: -1n })) return;
    };
    await expectCode(read(), Code.InvalidArgument);
  });
});

describe("unexpected failures", () => {
  const leak = new Error('relation "inventory.products" does not exist at /srv/app/store.ts:42');

  test("a repository error is internal with a generic message", async () => {
    const { client, repo } = setup();
    repo.failNext("reserve", leak);
    const error = await expectCode(
      client.reserveStock({ orderId: "order-1", items: [{ sku: "TEA", quantity: 1n }] }),
      Code.Internal,
    );
    assert.equal(error.rawMessage, "internal error");
  });

  test("also when it happens in a read or a stream", async () => {
    const { client, repo } = setup();
    repo.failNext("list", leak);
    const listed = await expectCode(client.listProducts({}), Code.Internal);
    assert.equal(listed.rawMessage, "internal error");
    repo.failNext("snapshotPage", leak);
    const read = async () => {
      for await (const _ of client.watchStock({ startRevision: 0n })) return;
    };
    const watched = await expectCode(read(), Code.Internal);
    assert.equal(watched.rawMessage, "internal error");
  });

  test("a database that cannot be reached is unavailable", async () => {
    const { client, repo } = setup();
    repo.failNext(
      "get",
      Object.assign(new Error("connect ECONNREFUSED 10.0.0.5:5432"), { code: "ECONNREFUSED" }),
    );
    const error = await expectCode(client.getProduct({ sku: "TEA" }), Code.Unavailable);
    assert.doesNotMatch(error.rawMessage, /ECONNREFUSED|10\.0\.0\.5/);
  });
});
