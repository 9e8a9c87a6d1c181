// The orders domain's rules port over the contract: each check makes the contract's request message
// of a domain value and runs protovalidate on it, so that the domain refuses what the runtime
// refuses on the wire, by the same rules, while the domain itself imports no protobuf.
import {
  CreateOrderRequestSchema,
  file_shop_order_v1_order_service,
} from "@shop/api/shop/order/v1/order_service_pb";
import { contractCheck, createContractValidator } from "@shop/mesh/contract-rules";
import type { OrderRules } from "./domain/order.ts";

const validator = createContractValidator([file_shop_order_v1_order_service]);

/** The rules of OrderService's contract, as the orders domain checks them. */
export const orderContractRules: OrderRules = {
  newOrder: contractCheck(validator, CreateOrderRequestSchema, (order) => ({
    userId: order.userId,
    items: order.items.map((item) => ({ sku: item.sku, quantity: item.quantity })),
    requestId: order.requestId,
  })),
};
