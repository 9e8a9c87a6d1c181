import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  EventType,
  type ProductEventSchema,
  type ProductSchema,
  type ReservationSchema,
  ReservationStatus,
} from "@shop/api/shop/inventory/v1/inventory_pb";
import type { Product, ProductEvent, Reservation } from "../domain/product.ts";

/** The wire form of a product. */
export function productToProto(product: Product): MessageInitShape<typeof ProductSchema> {
  return { ...product };
}

/** The wire form of a reservation. */
export function reservationToProto(
  reservation: Reservation,
): MessageInitShape<typeof ReservationSchema> {
  return {
    orderId: reservation.orderId,
    items: reservation.items.map((item) => ({ ...item })),
    status: reservation.status === "held" ? ReservationStatus.HELD : ReservationStatus.RELEASED,
  };
}

const eventTypeToProto: Record<ProductEvent["type"], EventType> = {
  snapshot: EventType.SNAPSHOT,
  created: EventType.CREATED,
  updated: EventType.UPDATED,
  deleted: EventType.DELETED,
};

/** The wire form of a product event. */
export function eventToProto(event: ProductEvent): MessageInitShape<typeof ProductEventSchema> {
  return {
    type: eventTypeToProto[event.type],
    product: productToProto(event.product),
    revision: event.revision,
  };
}
