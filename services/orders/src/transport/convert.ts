import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  EventType,
  type OrderEventSchema,
  type OrderSchema,
  OrderStatus,
} from "@shop/api/shop/order/v1/order_pb";
import type { Order, OrderEvent } from "../domain/order.ts";

/** The wire form of an order. */
export function orderToProto(order: Order): MessageInitShape<typeof OrderSchema> {
  return {
    id: order.id,
    userId: order.userId,
    items: order.items.map((item) => ({ ...item })),
    totalCents: order.totalCents,
    status: order.status === "confirmed" ? OrderStatus.CONFIRMED : OrderStatus.CANCELLED,
    createTime: timestampFromDate(order.createTime),
    updateTime: timestampFromDate(order.updateTime),
    version: order.version,
    requestId: order.requestId,
  };
}

/**
 * The domain status of a status to filter on. The contract allows only the defined statuses but
 * UNSPECIFIED there; anything else is refused here too, rather than read as no filter.
 */
export function statusFromProto(status: OrderStatus): Order["status"] {
  if (status === OrderStatus.CONFIRMED) return "confirmed";
  if (status === OrderStatus.CANCELLED) return "cancelled";
  throw new ConnectError(
    "status must be ORDER_STATUS_CONFIRMED or ORDER_STATUS_CANCELLED when set",
    Code.InvalidArgument,
  );
}

const eventTypeToProto: Record<OrderEvent["type"], EventType> = {
  snapshot: EventType.SNAPSHOT,
  created: EventType.CREATED,
  updated: EventType.UPDATED,
  deleted: EventType.DELETED,
};

/** The wire form of an order event. */
export function eventToProto(event: OrderEvent): MessageInitShape<typeof OrderEventSchema> {
  return {
    type: eventTypeToProto[event.type],
    order: orderToProto(event.order),
    revision: event.revision,
  };
}
