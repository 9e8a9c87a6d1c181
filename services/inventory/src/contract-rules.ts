// The inventory domain's rules port over the contract: each check makes the contract's request
// message of a domain value and runs protovalidate on it, so that the domain refuses what the
// runtime refuses on the wire, by the same rules, while the domain itself imports no protobuf.
import {
  AdjustStockRequestSchema,
  file_shop_inventory_v1_inventory_service,
  GetProductRequestSchema,
  ReleaseStockRequestSchema,
  ReserveStockRequestSchema,
} from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { contractCheck, createContractValidator } from "@shop/mesh/contract-rules";
import type { InventoryRules } from "./domain/product.ts";

const validator = createContractValidator([file_shop_inventory_v1_inventory_service]);

/** The rules of InventoryService's contract, as the inventory domain checks them. */
export const inventoryContractRules: InventoryRules = {
  reservation: contractCheck(validator, ReserveStockRequestSchema, (request) => ({
    orderId: request.orderId,
    items: request.items.map((item) => ({ sku: item.sku, quantity: item.quantity })),
  })),
  release: contractCheck(validator, ReleaseStockRequestSchema, (request) => request),
  adjustment: contractCheck(validator, AdjustStockRequestSchema, (request) => request),
};

const productRequest = contractCheck(validator, GetProductRequestSchema, (sku: string) => ({
  sku,
}));

/** True when `sku` has the form the contract gives skus (a page token's position must). */
export function isSku(sku: string): boolean {
  return productRequest(sku).length === 0;
}
