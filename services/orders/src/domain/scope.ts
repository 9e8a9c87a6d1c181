import { OrderAccessDeniedError } from "./errors.ts";
import type { Order } from "./order.ts";

/**
 * Whose orders a caller may see and change: undefined for staff and services (every order), the
 * user id of a customer (only their own). Authentication decides it; every read, watch and change
 * of orders applies it.
 */
export type OrderScope = string | undefined;

/** The user a request may filter on within `scope`: a customer always their own id. */
export function userWithin(scope: OrderScope, requested: string | undefined): string | undefined {
  if (scope === undefined) return requested;
  if (requested !== undefined && requested !== "" && requested !== scope) {
    throw new OrderAccessDeniedError(
      `a customer sees only their own orders, not those of user ${requested}`,
    );
  }
  return scope;
}

/** True when `order` is within `scope`. */
export function isVisible(scope: OrderScope, order: Order): boolean {
  return scope === undefined || order.userId === scope;
}
