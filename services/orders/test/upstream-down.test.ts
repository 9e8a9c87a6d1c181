// What a client of the orders service sees when one of its upstreams is down: `unavailable`, with
// a message that names the upstream and nothing of the machinery, and no stock left held.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { expectCode } from "@shop/testing";
import { type Shop, startShop } from "./shop.ts";

let running: Shop | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

/** Things that must never reach a client: addresses, ports, socket errors, stack frames, SQL. */
const internals =
  /ECONNREFUSED|127\.0\.0\.1|localhost|:\d{4,5}\b|\bat .*\(|\.ts\b|select |insert /i;

async function shopWithUser() {
  const started = await startShop();
  running = started;
  const { user } = await started.usersClient.createUser({ name: "Ada", email: "ada@example.com" });
  return { shop: started, userId: user?.id ?? "" };
}

test("with the users service stopped, CreateOrder is unavailable and reserves nothing", async () => {
  const { shop, userId } = await shopWithUser();
  const { product: before } = await shop.inventoryClient.getProduct({ sku: "MUG-CERAMIC" });
  await shop.users.stop(100);
  const error = await expectCode(
    shop.ordersClient.createOrder({ userId, items: [{ sku: "MUG-CERAMIC", quantity: 1n }] }),
    Code.Unavailable,
  );
  assert.match(error.rawMessage, /users/);
  assert.doesNotMatch(error.rawMessage, internals);
  const { product: after } = await shop.inventoryClient.getProduct({ sku: "MUG-CERAMIC" });
  assert.equal(after?.stock, before?.stock);
  assert.equal((await shop.ordersClient.listOrders({})).orders.length, 0);
});

test("with the inventory stopped, CreateOrder and CancelOrder are unavailable", async () => {
  const { shop, userId } = await shopWithUser();
  const { order } = await shop.ordersClient.createOrder({
    userId,
    items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
  });
  await shop.inventory.stop(100);
  const created = await expectCode(
    shop.ordersClient.createOrder({ userId, items: [{ sku: "MUG-CERAMIC", quantity: 1n }] }),
    Code.Unavailable,
  );
  assert.match(created.rawMessage, /inventory/);
  assert.doesNotMatch(created.rawMessage, internals);
  const cancelled = await expectCode(
    shop.ordersClient.cancelOrder({ id: order?.id ?? "" }),
    Code.Unavailable,
  );
  assert.doesNotMatch(cancelled.rawMessage, internals);
  // The order keeps its stock and stays cancellable once the inventory is back.
  const { order: current } = await shop.ordersClient.getOrder({ id: order?.id ?? "" });
  assert.equal(current?.status, order?.status);
  assert.equal((await shop.ordersClient.listOrders({})).orders.length, 1);
});
