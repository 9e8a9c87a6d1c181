import type { EventBatch } from "@shop/mesh/watch";

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

/** One change of one order as the watch reports it. */
export interface OrderEvent {
  type: "snapshot" | "created" | "updated" | "deleted";
  order: Order;
  revision: bigint;
}

/** A page of orders and the revision it reflects. */
export interface OrderPage {
  orders: Order[];
  nextCursor: string | undefined;
  revision: bigint;
}

/** An order ready to be stored, with the fingerprint of the request that made it. */
export interface NewOrder {
  id: string;
  userId: string;
  items: OrderItem[];
  totalCents: bigint;
  requestId: string;
  requestFingerprint: string;
}

/** Where orders are kept. */
export interface OrderRepository {
  /**
   * Stores the order unless one with its request id exists; returns the stored order (the
   * existing one on a repeat) and its request fingerprint.
   */
  insert(order: NewOrder): Promise<{ order: Order; requestFingerprint: string }>;
  get(id: string): Promise<Order | undefined>;
  /** The order made by a request id and the fingerprint of that request. */
  findByRequestId(
    requestId: string,
  ): Promise<{ order: Order; requestFingerprint: string } | undefined>;
  /** Newest first, optionally of one user, after `cursor`, with the revision of the read. */
  list(options: {
    userId: string | undefined;
    cursor: string | undefined;
    limit: number;
  }): Promise<OrderPage>;
  /** Every order (of one user, when given) and the revision they reflect, in one snapshot. */
  snapshot(userId: string | undefined): Promise<{ orders: Order[]; revision: bigint }>;
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
