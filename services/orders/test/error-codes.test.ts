// Each error code of OrderService's contract, as clients of every protocol see it from the real
// servers (the inventory's codes are covered the same way in services/inventory/test).
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { expectCode, protocols } from "@shop/testing";
import { type Shop, startShop } from "./shop.ts";

let shop: Shop;
let userId: string;
let cancelledId: string;
before(async () => {
  shop = await startShop();
  const { user } = await shop.usersClient.createUser({ name: "Ada", email: "ada@example.com" });
  userId = user?.id ?? "";
  const { order } = await shop.ordersClient.createOrder({
    userId,
    items: [{ sku: "TEA-GREEN-100G", quantity: 1n }],
  });
  cancelledId = order?.id ?? "";
  await shop.ordersClient.cancelOrder({ id: cancelledId });
});
after(async () => {
  await shop.stop();
});

for (const protocol of protocols) {
  describe(protocol.name, () => {
    const client = () => shop.ordersClientOver(protocol.transport);

    test("CreateOrder with no items is invalid_argument", async () => {
      await expectCode(client().createOrder({ userId, items: [] }), Code.InvalidArgument);
    });

    test("CreateOrder with a malformed request_id is invalid_argument", async () => {
      await expectCode(
        client().createOrder({
          userId,
          items: [{ sku: "TEA-GREEN-100G", quantity: 1n }],
          requestId: "not-a-uuid",
        }),
        Code.InvalidArgument,
      );
    });

    test("ListOrders with a forged page_token is invalid_argument", async () => {
      await expectCode(client().listOrders({ pageToken: "forged" }), Code.InvalidArgument);
    });

    test("GetOrder and CancelOrder of an unknown order are not_found", async () => {
      await expectCode(client().getOrder({ id: randomUUID() }), Code.NotFound);
      await expectCode(client().cancelOrder({ id: randomUUID() }), Code.NotFound);
    });

    test("CreateOrder for an unknown user is failed_precondition", async () => {
      await expectCode(
        client().createOrder({
          userId: randomUUID(),
          items: [{ sku: "TEA-GREEN-100G", quantity: 1n }],
        }),
        Code.FailedPrecondition,
      );
    });

    test("CreateOrder beyond the stock is failed_precondition", async () => {
      await expectCode(
        client().createOrder({ userId, items: [{ sku: "KETTLE-STEEL", quantity: 10_000n }] }),
        Code.FailedPrecondition,
      );
    });

    test("CancelOrder of a cancelled order is failed_precondition", async () => {
      await expectCode(client().cancelOrder({ id: cancelledId }), Code.FailedPrecondition);
    });
  });
}

test("GetOrder over Connect's HTTP GET is not_found as well", async () => {
  const client = shop.ordersClientOver((baseUrl) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", useHttpGet: true }),
  );
  await expectCode(client.getOrder({ id: randomUUID() }), Code.NotFound);
});
