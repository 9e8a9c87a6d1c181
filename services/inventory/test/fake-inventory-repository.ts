import { snapshotPageOf } from "@shop/mesh/watch";
import { inventoryContractRules } from "../src/contract-rules.ts";
import {
  InsufficientStockError,
  ProductNotFoundError,
  ReservationConflictError,
  ReservationReleasedError,
} from "../src/domain/errors.ts";
import type {
  Inventory,
  InventoryRepository,
  NewProduct,
  Product,
  ProductEvent,
  Reservation,
  StockItem,
} from "../src/domain/product.ts";

/** The in-memory repository plus what a test needs to look inside it or make it fail. */
export interface FakeInventoryRepository extends Inventory {
  /** The product as stored now, or undefined. */
  product(sku: string): Product | undefined;
  /** Every reservation, by order id. */
  reservations(): Map<string, Reservation>;
  /** Makes the next call of `method` throw `error` (a database that fails, say). */
  failNext(method: keyof InventoryRepository, error: Error): void;
}

/**
 * Keeps products, reservations and a change log in memory with the semantics the domain relies on
 * from the PostgreSQL store: all-or-nothing reservations keyed by order id, idempotent releases,
 * stock that never goes below zero, and revisions that grow strictly.
 */
export function createFakeInventoryRepository(
  catalog: readonly NewProduct[] = [],
): FakeInventoryRepository {
  const products = new Map<string, Product>();
  const held = new Map<string, Reservation>();
  const log: ProductEvent[] = [];
  const waiters = new Set<() => void>();
  const failures = new Map<keyof InventoryRepository, Error>();

  const failIfAsked = (method: keyof InventoryRepository) => {
    const error = failures.get(method);
    if (error) {
      failures.delete(method);
      throw error;
    }
  };
  const record = (type: ProductEvent["type"], product: Product) => {
    log.push({ type, product: { ...product }, revision: BigInt(log.length + 1) });
    for (const wake of waiters) wake();
  };
  const sorted = () => [...products.values()].sort((a, b) => (a.sku < b.sku ? -1 : 1));
  const copy = (product: Product) => ({ ...product });
  /** Moves stock to reserved (or back), all or none. */
  const move = (items: readonly StockItem[], direction: 1n | -1n) => {
    for (const item of items) {
      const product = products.get(item.sku);
      if (!product) throw new ProductNotFoundError(item.sku);
      if (direction === 1n && product.stock < item.quantity) {
        throw new InsufficientStockError(item.sku, item.quantity, product.stock);
      }
    }
    return items.map((item) => {
      const product = products.get(item.sku) as Product;
      product.stock -= direction * item.quantity;
      product.reserved += direction * item.quantity;
      product.version += 1n;
      record("updated", product);
      return copy(product);
    });
  };

  const seed = (items: readonly NewProduct[]) => {
    if (products.size > 0) return;
    for (const item of items) {
      const product: Product = { ...item, reserved: 0n, version: 1n };
      products.set(item.sku, product);
      record("created", product);
    }
  };
  seed(catalog);

  return {
    // The contract's own rules: the domain is tested against what the service enforces.
    rules: inventoryContractRules,
    product: (sku) => {
      const product = products.get(sku);
      return product && copy(product);
    },
    reservations: () => new Map([...held].map(([id, r]) => [id, { ...r, items: [...r.items] }])),
    failNext(method, error) {
      failures.set(method, error);
    },

    async list({ cursor, limit }) {
      failIfAsked("list");
      const after = sorted().filter((product) => cursor === undefined || product.sku > cursor);
      const page = after.slice(0, limit);
      return {
        products: page.map(copy),
        nextCursor: after.length > limit ? page.at(-1)?.sku : undefined,
        revision: BigInt(log.length),
      };
    },

    async get(sku) {
      failIfAsked("get");
      const product = products.get(sku);
      return product && copy(product);
    },

    async snapshotPage({ after, limit }) {
      failIfAsked("snapshotPage");
      const rest = sorted().filter((product) => after === undefined || product.sku > after);
      return snapshotPageOf(rest, limit, BigInt(log.length), copy, (product) => product.sku);
    },

    async *changesThrough({ after, upTo, through }) {
      failIfAsked("changesThrough");
      const events = log.filter(
        (event) => event.revision > after && event.revision <= upTo && event.product.sku <= through,
      );
      if (events.length > 0) yield { events, revision: upTo };
    },

    async adjust(sku, delta) {
      failIfAsked("adjust");
      const product = products.get(sku);
      if (!product) throw new ProductNotFoundError(sku);
      if (product.stock + delta < 0n) throw new InsufficientStockError(sku, -delta, product.stock);
      product.stock += delta;
      product.version += 1n;
      record("updated", product);
      return copy(product);
    },

    async reserve(orderId, items) {
      failIfAsked("reserve");
      const existing = held.get(orderId);
      if (existing) {
        if (existing.status === "released") {
          throw new ReservationReleasedError(`the reservation of order ${orderId} was released`);
        }
        const same =
          existing.items.length === items.length &&
          existing.items.every(
            (item, i) => item.sku === items[i]?.sku && item.quantity === items[i]?.quantity,
          );
        if (!same) {
          throw new ReservationConflictError(`order ${orderId} already holds other items`);
        }
        return {
          reservation: { ...existing },
          products: existing.items.flatMap((item) => {
            const product = products.get(item.sku);
            return product ? [copy(product)] : [];
          }),
        };
      }
      const updated = move(items, 1n);
      const reservation: Reservation = { orderId, items: [...items], status: "held" };
      held.set(orderId, reservation);
      return { reservation: { ...reservation }, products: updated };
    },

    async release(orderId) {
      failIfAsked("release");
      const existing = held.get(orderId);
      if (!existing) {
        // As the store does: a later reserve for this order is refused.
        held.set(orderId, { orderId, items: [], status: "released" });
        return undefined;
      }
      if (existing.status === "held") {
        move(existing.items, -1n);
        existing.status = "released";
      }
      return { ...existing };
    },

    async seed(items) {
      failIfAsked("seed");
      seed(items);
    },

    async *changes(after, signal) {
      failIfAsked("changes");
      let cursor = after;
      let first = true;
      while (!signal.aborted) {
        const events = log.filter((event) => event.revision > cursor);
        if (events.length > 0 || first) {
          first = false;
          cursor = events.at(-1)?.revision ?? cursor;
          yield { events, revision: cursor };
          continue;
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            waiters.delete(done);
            signal.removeEventListener("abort", done);
            resolve();
          };
          waiters.add(done);
          signal.addEventListener("abort", done);
        });
      }
    },
  };
}
