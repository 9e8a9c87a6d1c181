import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderRetryLaterError, StockUnavailableError } from "../domain/errors.ts";
import type { StockKeeper } from "../domain/order.ts";
import { upstreamFailure } from "./upstream-errors.ts";

/** Holds and releases stock in the inventory service. */
export function createStockKeeper(client: Client<typeof InventoryService>): StockKeeper {
  return {
    async reserve(orderId, items) {
      try {
        const { products } = await client.reserveStock({ orderId, items: [...items] });
        return new Map(products.map((product) => [product.sku, product.priceCents]));
      } catch (error) {
        // The inventory's own words say which product is unknown or short.
        if (error instanceof ConnectError) {
          if (error.code === Code.NotFound || error.code === Code.FailedPrecondition) {
            throw new StockUnavailableError(error.rawMessage, { cause: error });
          }
          // The order's reservation was released by a rollback racing this call.
          if (error.code === Code.Aborted) {
            throw new OrderRetryLaterError(
              "the order was rolled back while it was being placed; send the request again",
              { cause: error },
            );
          }
        }
        throw upstreamFailure("inventory", error) ?? error;
      }
    },
    async release(orderId) {
      try {
        await client.releaseStock({ orderId });
      } catch (error) {
        throw upstreamFailure("inventory", error) ?? error;
      }
    },
  };
}
