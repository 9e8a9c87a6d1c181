import type { RuleCheck } from "@shop/mesh/rule-violation";
import type { EventBatch, SnapshotPage } from "@shop/mesh/watch";

/** An item the shop sells, with its stock. */
export interface Product {
  sku: string;
  name: string;
  priceCents: bigint;
  /** Units that can still be ordered. */
  stock: bigint;
  /** Units held by reservations of live orders. */
  reserved: bigint;
  version: bigint;
}

/** A quantity of one product. */
export interface StockItem {
  sku: string;
  quantity: bigint;
}

/** Stock held for one order. */
export interface Reservation {
  orderId: string;
  items: StockItem[];
  status: "held" | "released";
}

/** One change of one product as the watch reports it. */
export interface ProductEvent {
  type: "snapshot" | "created" | "updated" | "deleted";
  product: Product;
  revision: bigint;
}

/** A page of products and the revision it reflects. */
export interface ProductPage {
  products: Product[];
  nextCursor: string | undefined;
  revision: bigint;
}

/** A product to add to the catalog. */
export interface NewProduct {
  sku: string;
  name: string;
  priceCents: bigint;
  stock: bigint;
}

/**
 * The contract's rules for what may be asked of the inventory (a port: the service implements it
 * over its contract's `buf.validate` rules, which the runtime also enforces on every request), so
 * that the domain refuses what breaks them also when it is called directly.
 */
export interface InventoryRules {
  /** The rules a reservation breaks: its order id and its items. */
  reservation: RuleCheck<{ orderId: string; items: readonly StockItem[] }>;
  /** The rules a release breaks: its order id. */
  release: RuleCheck<{ orderId: string }>;
  /** The rules a change of stock breaks: its sku and its delta. */
  adjustment: RuleCheck<{ sku: string; delta: bigint }>;
}

/** Where the catalog, stock and reservations are kept. */
export interface InventoryRepository {
  /** Products ordered by sku after `cursor`, with the revision of the read. */
  list(options: { cursor: string | undefined; limit: number }): Promise<ProductPage>;
  get(sku: string): Promise<Product | undefined>;
  /**
   * Up to `limit` products with skus after `after` (all when undefined), in sku order, read in
   * one transaction at `atLeast` or a later revision; `next` is the last sku when more may follow.
   */
  snapshotPage(request: {
    after: string | undefined;
    limit: number;
    atLeast: bigint;
  }): Promise<SnapshotPage<Product>>;
  /** The changes in (after, upTo] to products with skus up to `through`, in order. */
  changesThrough(request: {
    after: bigint;
    upTo: bigint;
    through: string;
  }): AsyncIterable<EventBatch<ProductEvent>>;
  /** Adds `delta` to the stock; throws ProductNotFoundError or InsufficientStockError. */
  adjust(sku: string, delta: bigint): Promise<Product>;
  /**
   * Holds `items` for `orderId`, all or none; returns the existing reservation when the order
   * already has one with the same items.
   */
  reserve(
    orderId: string,
    items: readonly StockItem[],
  ): Promise<{ reservation: Reservation; products: Product[] }>;
  /** Gives back the stock held for `orderId`; undefined when it never held any. */
  release(orderId: string): Promise<Reservation | undefined>;
  /** Adds the products unless the catalog already has some. */
  seed(products: readonly NewProduct[]): Promise<void>;
  /** Changes after `after`, in revision order, until `signal` aborts. */
  changes(after: bigint, signal: AbortSignal): AsyncIterable<EventBatch<ProductEvent>>;
}

/**
 * The inventory as the use cases that take input need it: where it is kept, and the contract's
 * rules for what may be asked of it. The store and the tests' repository carry the contract's
 * rules themselves, so that every caller of those use cases gets the same refusals.
 */
export interface Inventory extends InventoryRepository {
  /** The rules of the contract that what is asked of the inventory must keep. */
  readonly rules: InventoryRules;
}
