import { create } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { OrderEventSchema } from "@shop/api/shop/order/v1/order_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import {
  callerOf,
  decodePageToken,
  encodePageToken,
  mapDomainErrors,
  pageSizeOf,
} from "@shop/mesh";
import { convertBatchesOnce, convertOnce, type EventBatch, mapStream } from "@shop/mesh/watch";
import { cancelOrder } from "../domain/cancel-order.ts";
import { type CreateOrderDeps, createOrder } from "../domain/create-order.ts";
import { getOrder } from "../domain/get-order.ts";
import { listOrders } from "../domain/list-orders.ts";
import type { OrderEvent } from "../domain/order.ts";
import type { OrderScope } from "../domain/scope.ts";
import { trackOrders } from "../domain/track-orders.ts";
import { watchOrders } from "../domain/watch-orders.ts";
import { eventToProto, orderToProto, statusFromProto } from "./convert.ts";
import { toConnectError } from "./errors.ts";

/** Registers OrderService: decodes each request, calls the domain, maps its errors to codes. */
export function orderRoutes(deps: CreateOrderDeps) {
  // Every watcher of a change gets the same message object, converted once (see convertOnce).
  const sharedProto = convertOnce((event: OrderEvent) =>
    create(OrderEventSchema, eventToProto(event)),
  );
  // Watches at the same place get the same batch, and so the same response: encoded once for all
  // of them on the gRPC path.
  const sharedResponse = convertBatchesOnce(
    (batch: EventBatch<OrderEvent>) => batch.events,
    sharedProto,
  );
  const { orders } = deps;
  return (router: ConnectRouter) =>
    router.service(
      OrderService,
      mapDomainErrors<ServiceImpl<typeof OrderService>>(
        {
          async createOrder(req, context) {
            const order = await createOrder(
              deps,
              {
                userId: req.userId,
                items: req.items.map((item) => ({ sku: item.sku, quantity: item.quantity })),
                requestId: req.requestId,
              },
              scopeOf(context),
            );
            return { order: orderToProto(order) };
          },
          async getOrder(req, context) {
            return { order: orderToProto(await getOrder(orders, req.id, scopeOf(context))) };
          },
          async listOrders(req, context) {
            const limit = pageSizeOf(req.pageSize);
            const filters = { user_id: req.userId, status: req.status };
            const cursor = decodePageToken(
              req.pageToken,
              (after) => /^\d{1,18}$/.test(after),
              filters,
            );
            const page = await listOrders(
              orders,
              {
                userId: req.userId,
                status: req.status === undefined ? undefined : statusFromProto(req.status),
                cursor,
                limit,
              },
              scopeOf(context),
            );
            return {
              orders: page.orders.map(orderToProto),
              nextPageToken:
                page.nextCursor === undefined ? "" : encodePageToken(page.nextCursor, filters),
              revision: page.revision,
              totalSize: page.totalSize,
            };
          },
          async cancelOrder(req, context) {
            return { order: orderToProto(await cancelOrder(deps, req.id, scopeOf(context))) };
          },
          watchOrders(req, context) {
            const batches = watchOrders(
              orders,
              { startRevision: req.startRevision, userId: req.userId, signal: context.signal },
              scopeOf(context),
            );
            return mapStream(batches, sharedResponse);
          },
          async *trackOrders(requests, context) {
            const changes = (async function* () {
              for await (const req of requests)
                yield { add: req.addOrderIds, remove: req.removeOrderIds };
            })();
            const batches = trackOrders(orders, changes, context.signal, scopeOf(context));
            for await (const batch of batches) {
              yield {
                events: batch.events.map(sharedProto),
                revision: batch.revision,
                unknownOrderIds: batch.unknownIds,
              };
            }
          },
        },
        toConnectError,
      ),
    );
}

/**
 * The orders the caller may see: all of them for admins and services (and when authentication is
 * off), only their own for anyone else, whose token's subject is their user id.
 */
function scopeOf(context: HandlerContext): OrderScope {
  const caller = callerOf(context);
  if (!caller || caller.roles.includes("admin") || caller.roles.includes("service")) {
    return undefined;
  }
  return caller.subject;
}
