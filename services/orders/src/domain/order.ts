import type { RuleCheck } from "@shop/mesh/rule-violation";
import type { EventBatch, SnapshotPage } from "@shop/mesh/watch";

/** One line of an order, priced when the order was placed. */
export interface OrderItem {
  sku: string;
  quantity: bigint;
  unitPriceCents: bigint;
}

/** An order placed by a user. */
export interface Order {
  id: string;
  userId: string;
  items: OrderItem[];
  totalCents: bigint;
  status: "confirmed" | "cancelled";
  createTime: Date;
  updateTime: Date;
  version: bigint;
  /** The request id of the CreateOrder call that made it; empty when the caller sent none. */
  requestId: string;
}

/** One line of an order to place. */
export interface RequestedItem {
  sku: string;
  quantity: bigint;
}

/** An order as CreateOrder asks for it. */
export interface NewOrderRequest {
  userId: string;
  items: readonly RequestedItem[];
  /** A UUID that makes retries safe (AIP-155); empty for none. */
  requestId: string;
}

/**
 * The contract's rules for what may be ordered (a port: the service implements it over its
 * contract's `buf.validate` rules, which the runtime also enforces on every request), so that the
 * domain refuses what breaks them also when it is called directly.
 */
export interface OrderRules {
  /** The rules an order to place breaks: its user id, its items and its request id. */
  newOrder: RuleCheck<NewOrderRequest>;
}

/** One change of one order as the watch reports it. */
export interface OrderEvent {
  type: "snapshot" | "created" | "updated" | "deleted";
  order: Order;
  revision: bigint;
}

/** Which orders ListOrders lists, and from where; always newest first. */
export interface OrderListing {
  /** Only this user's orders, when given. */
  userId: string | undefined;
  /** Only the orders in this status, when given. */
  status: Order["status"] | undefined;
  /** Where the previous page of the same listing ended; undefined for the first page. */
  cursor: string | undefined;
  limit: number;
}

/** A page of orders and the revision it reflects. */
export interface OrderPage {
  orders: Order[];
  nextCursor: string | undefined;
  revision: bigint;
  /** How many orders match the user and status at that revision, on every page. */
  totalSize: number;
}

/** An order to place, recorded as pending before its stock is reserved. */
export interface PendingOrder {
  id: string;
  userId: string;
  items: RequestedItem[];
  /** Empty when the client sent none: such an order cannot be found again by request. */
  requestId: string;
  requestFingerprint: string;
}

/** What a request id found: the order it made (in whatever state) and that request's fingerprint. */
export interface RecordedRequest {
  id: string;
  state: "pending" | "compensating" | "confirmed" | "cancelled";
  /** The order, once confirmed or cancelled. */
  order: Order | undefined;
  requestFingerprint: string;
}

/** Where orders are kept. Pending and compensating orders are invisible to every read but these. */
export interface OrderRepository {
  /**
   * Records the order as pending, unless its request id is already recorded: then returns what
   * that request made instead (`created: false`).
   */
  begin(order: PendingOrder): Promise<{ created: boolean; recorded: RecordedRequest }>;
  /**
   * Confirms a pending order with its prices, making it visible. Returns undefined when the order
   * is no longer pending (being compensated), the confirmed order when it already was confirmed.
   */
  confirm(id: string, items: readonly OrderItem[]): Promise<Order | undefined>;
  /** Forgets a pending order whose stock could not be reserved. */
  abandon(id: string): Promise<void>;
  /**
   * Marks pending orders untouched for `olderThanMs` as compensating and returns the ids of every
   * order being compensated (also those a crash left half done).
   */
  claimStale(olderThanMs: number, limit: number): Promise<string[]>;
  /** Deletes an order whose compensation (the release of its stock) is done. */
  removeCompensated(id: string): Promise<void>;
  /** Forgets request ids older than `ttlMs`, so that they may be used again. Returns how many. */
  expireRequestIds(ttlMs: number): Promise<number>;
  get(id: string): Promise<Order | undefined>;
  /** What a request id made, if it is recorded. */
  findByRequestId(requestId: string): Promise<RecordedRequest | undefined>;
  /**
   * The orders that match `listing` after its cursor, newest first, with how many match in all and
   * the revision of the read (all three from one snapshot).
   */
  list(listing: OrderListing): Promise<OrderPage>;
  /**
   * Up to `limit` orders (of one user, when given) with ids after `after` (all when undefined), in
   * id order, read in one transaction at `atLeast` or a later revision; `next` is the last id when
   * more may follow.
   */
  snapshotPage(request: {
    userId: string | undefined;
    after: string | undefined;
    limit: number;
    atLeast: bigint;
  }): Promise<SnapshotPage<Order>>;
  /** The changes in (after, upTo] to orders (of one user, when given) with ids up to `through`. */
  changesThrough(request: {
    userId: string | undefined;
    after: bigint;
    upTo: bigint;
    through: string;
  }): AsyncIterable<EventBatch<OrderEvent>>;
  /** The given orders as they are, and the revision they reflect, in one snapshot. */
  snapshotOf(ids: readonly string[]): Promise<{ orders: Order[]; revision: bigint }>;
  /** Marks a confirmed order cancelled; throws OrderNotCancellableError when it is not confirmed. */
  cancel(id: string): Promise<Order>;
  /** Changes after `after` (of one user's orders, when given), in revision order, until `signal` aborts. */
  changes(
    after: bigint,
    signal: AbortSignal,
    userId?: string,
  ): AsyncIterable<EventBatch<OrderEvent>>;
}

/** What the orders service needs to know about a user. */
export interface UserDirectory {
  /** The user's status, or undefined when there is no such user. */
  statusOf(userId: string): Promise<"active" | "suspended" | undefined>;
}

/** Holds and gives back stock in the inventory service. */
export interface StockKeeper {
  /** Holds the items for the order, all or none; returns the unit price of each sku. */
  reserve(orderId: string, items: readonly RequestedItem[]): Promise<Map<string, bigint>>;
  /** Gives back what the order holds; idempotent. */
  release(orderId: string): Promise<void>;
}

/**
 * The orders as the use cases that take input need them: where they are kept, and the contract's
 * rules for what may be ordered. The store and the tests' repository carry the contract's rules
 * themselves, so that every caller of those use cases gets the same refusals.
 */
export interface Orders extends OrderRepository {
  /** The rules of the contract that what is stored must keep. */
  readonly rules: OrderRules;
}
