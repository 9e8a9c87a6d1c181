import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { ProductEventSchema } from "@shop/api/shop/inventory/v1/inventory_pb";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { decodePageToken, encodePageToken, mapDomainErrors, pageSizeOf } from "@shop/mesh";
import { convertBatchesOnce, convertOnce, type EventBatch, mapStream } from "@shop/mesh/watch";
import { isSku } from "../contract-rules.ts";
import { adjustStock } from "../domain/adjust-stock.ts";
import { getProduct } from "../domain/get-product.ts";
import { listProducts } from "../domain/list-products.ts";
import type { Inventory, ProductEvent } from "../domain/product.ts";
import { releaseStock } from "../domain/release-stock.ts";
import { reserveStock } from "../domain/reserve-stock.ts";
import { watchStock } from "../domain/watch-stock.ts";
import { eventToProto, productToProto, reservationToProto } from "./convert.ts";
import { toConnectError } from "./errors.ts";

/** Registers InventoryService: decodes each request, calls the domain, maps its errors to codes. */
export function inventoryRoutes(inventory: Inventory) {
  // Every watcher of a change gets the same message object, converted once (see convertOnce).
  const sharedProto = convertOnce((event: ProductEvent) =>
    create(ProductEventSchema, eventToProto(event)),
  );
  // Watches at the same place get the same batch, and so the same response: encoded once for all
  // of them on the gRPC path.
  const sharedResponse = convertBatchesOnce(
    (batch: EventBatch<ProductEvent>) => batch.events,
    sharedProto,
  );
  return (router: ConnectRouter) =>
    router.service(
      InventoryService,
      mapDomainErrors<ServiceImpl<typeof InventoryService>>(
        {
          async listProducts(req) {
            const limit = pageSizeOf(req.pageSize);
            const cursor = decodePageToken(req.pageToken, isSku);
            const page = await listProducts(inventory, { cursor, limit });
            return {
              products: page.products.map(productToProto),
              nextPageToken: page.nextCursor === undefined ? "" : encodePageToken(page.nextCursor),
              revision: page.revision,
            };
          },
          async getProduct(req) {
            return { product: productToProto(await getProduct(inventory, req.sku)) };
          },
          async adjustStock(req) {
            return { product: productToProto(await adjustStock(inventory, req)) };
          },
          async reserveStock(req) {
            const { reservation, products } = await reserveStock(inventory, req);
            return {
              reservation: reservationToProto(reservation),
              products: products.map(productToProto),
            };
          },
          async releaseStock(req) {
            const reservation = await releaseStock(inventory, req);
            return { reservation: reservation && reservationToProto(reservation) };
          },
          watchStock(req, context) {
            const batches = watchStock(inventory, {
              startRevision: req.startRevision,
              signal: context.signal,
            });
            return mapStream(batches, sharedResponse);
          },
        },
        toConnectError,
      ),
    );
}
