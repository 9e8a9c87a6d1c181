import { snapshotPageOf } from "@shop/mesh/watch";
import { orderContractRules } from "../src/contract-rules.ts";
import {
  OrderNotCancellableError,
  OrderNotFoundError,
  OrderRetryLaterError,
  StockUnavailableError,
} from "../src/domain/errors.ts";
import type {
  Order,
  OrderEvent,
  OrderRepository,
  Orders,
  PendingOrder,
  RecordedRequest,
  RequestedItem,
  StockKeeper,
  UserDirectory,
} from "../src/domain/order.ts";

/** The in-memory order repository plus what a test needs to look inside it or make it fail. */
export interface FakeOrderRepository extends Orders {
  /** Every acknowledged (confirmed or cancelled) order, oldest first. */
  all(): Order[];
  /** How many orders are recorded but not acknowledged (pending or being rolled back). */
  unacknowledged(): number;
  /** Moves the repository's clock forward, so that pending orders grow stale. */
  advance(ms: number): void;
  /** Makes the next call of `method` throw `error` (a database that fails, say). */
  failNext(method: keyof OrderRepository, error: Error): void;
}

type State = RecordedRequest["state"];
interface Entry {
  order: Omit<Order, "status"> & { status: State };
  seq: number;
  requestFingerprint: string;
}

/**
 * Keeps orders and their change log in memory with the semantics the domain relies on from the
 * PostgreSQL store: an order is recorded as pending first (one per request id: a repeat gets the
 * recorded one back), becomes visible only when confirmed, is rolled back by claiming it once it
 * is stale; listing is newest first, only confirmed orders can be cancelled, and revisions grow
 * strictly.
 */
export function createFakeOrderRepository(): FakeOrderRepository {
  const entries: Entry[] = [];
  const log: OrderEvent[] = [];
  const waiters = new Set<() => void>();
  const failures = new Map<keyof OrderRepository, Error>();
  let clock = Date.UTC(2024, 0, 1);
  /** A clock that moves a second per write, so that times differ and grow. */
  const tick = () => {
    clock += 1000;
    return new Date(clock);
  };

  const failIfAsked = (method: keyof OrderRepository) => {
    const error = failures.get(method);
    if (error) {
      failures.delete(method);
      throw error;
    }
  };
  const acknowledged = (entry: Entry) =>
    entry.order.status === "confirmed" || entry.order.status === "cancelled";
  const orderOf = (entry: Entry): Order => ({
    ...entry.order,
    status: entry.order.status === "cancelled" ? "cancelled" : "confirmed",
    items: entry.order.items.map((item) => ({ ...item })),
  });
  const recordedOf = (entry: Entry): RecordedRequest => ({
    id: entry.order.id,
    state: entry.order.status,
    order: acknowledged(entry) ? orderOf(entry) : undefined,
    requestFingerprint: entry.requestFingerprint,
  });
  const record = (type: OrderEvent["type"], entry: Entry) => {
    log.push({ type, order: orderOf(entry), revision: BigInt(log.length + 1) });
    for (const wake of waiters) wake();
  };
  const find = (id: string) => entries.find((entry) => entry.order.id === id);
  const remove = (id: string, state: State) => {
    const index = entries.findIndex(
      (entry) => entry.order.id === id && entry.order.status === state,
    );
    if (index >= 0) entries.splice(index, 1);
  };
  const visibleNewestFirst = (userId: string | undefined) =>
    entries
      .filter(
        (entry) => acknowledged(entry) && (userId === undefined || entry.order.userId === userId),
      )
      .reverse();
  const revision = () => BigInt(log.length);
  let seq = 0;

  return {
    // The contract's own rules: the domain is tested against what the service enforces.
    rules: orderContractRules,
    all: () => entries.filter(acknowledged).map(orderOf),
    unacknowledged: () => entries.filter((entry) => !acknowledged(entry)).length,
    advance(ms) {
      clock += ms;
    },
    failNext(method, error) {
      failures.set(method, error);
    },

    async begin(order: PendingOrder) {
      failIfAsked("begin");
      const existing = entries.find(
        (entry) =>
          entry.order.id === order.id ||
          (order.requestId !== "" && entry.order.requestId === order.requestId),
      );
      if (existing) return { created: false, recorded: recordedOf(existing) };
      const now = tick();
      const entry: Entry = {
        order: {
          id: order.id,
          userId: order.userId,
          items: order.items.map((item) => ({ ...item, unitPriceCents: 0n })),
          totalCents: 0n,
          status: "pending",
          createTime: now,
          updateTime: now,
          version: 1n,
          requestId: order.requestId,
        },
        seq: ++seq,
        requestFingerprint: order.requestFingerprint,
      };
      entries.push(entry);
      return { created: true, recorded: recordedOf(entry) };
    },

    async confirm(id, items) {
      failIfAsked("confirm");
      const entry = find(id);
      if (!entry) return undefined;
      if (entry.order.status === "pending") {
        const now = tick();
        Object.assign(entry.order, {
          status: "confirmed",
          items: items.map((item) => ({ ...item })),
          totalCents: items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0n),
          createTime: now,
          updateTime: now,
        });
        record("created", entry);
        return orderOf(entry);
      }
      return acknowledged(entry) ? orderOf(entry) : undefined;
    },

    async abandon(id) {
      failIfAsked("abandon");
      remove(id, "pending");
    },

    async claimStale(olderThanMs, limit) {
      failIfAsked("claimStale");
      for (const entry of entries) {
        if (
          entry.order.status === "pending" &&
          entry.order.updateTime.getTime() < clock - olderThanMs
        ) {
          entry.order.status = "compensating";
          entry.order.updateTime = tick();
        }
      }
      return entries
        .filter((entry) => entry.order.status === "compensating")
        .slice(0, limit)
        .map((entry) => entry.order.id);
    },

    async removeCompensated(id) {
      failIfAsked("removeCompensated");
      remove(id, "compensating");
    },

    async expireRequestIds(ttlMs) {
      failIfAsked("expireRequestIds");
      let expired = 0;
      for (const entry of entries) {
        if (
          acknowledged(entry) &&
          entry.order.requestId !== "" &&
          entry.order.createTime.getTime() < clock - ttlMs
        ) {
          entry.order.requestId = "";
          expired++;
        }
      }
      return expired;
    },

    async get(id) {
      failIfAsked("get");
      const entry = find(id);
      return entry && acknowledged(entry) ? orderOf(entry) : undefined;
    },

    async findByRequestId(requestId) {
      failIfAsked("findByRequestId");
      const entry = entries.find((candidate) => candidate.order.requestId === requestId);
      return entry && recordedOf(entry);
    },

    async list({ userId, status, cursor, limit }) {
      failIfAsked("list");
      const matching = visibleNewestFirst(userId).filter(
        (entry) => status === undefined || entry.order.status === status,
      );
      const after = matching.filter((entry) => cursor === undefined || entry.seq < Number(cursor));
      const page = after.slice(0, limit);
      const last = page.at(-1);
      return {
        orders: page.map(orderOf),
        nextCursor: after.length > limit && last ? String(last.seq) : undefined,
        revision: revision(),
        totalSize: matching.length,
      };
    },

    async snapshotPage({ userId, after, limit }) {
      failIfAsked("snapshotPage");
      const rest = visibleNewestFirst(userId)
        .map(orderOf)
        .filter((order) => after === undefined || order.id > after)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      return snapshotPageOf(
        rest,
        limit,
        revision(),
        (order) => order,
        (order) => order.id,
      );
    },

    async *changesThrough({ userId, after, upTo, through }) {
      failIfAsked("changesThrough");
      const events = log.filter(
        (event) =>
          event.revision > after &&
          event.revision <= upTo &&
          event.order.id <= through &&
          (userId === undefined || event.order.userId === userId),
      );
      if (events.length > 0) yield { events, revision: upTo };
    },

    async snapshotOf(ids) {
      failIfAsked("snapshotOf");
      return {
        orders: entries
          .filter((entry) => acknowledged(entry) && ids.includes(entry.order.id))
          .map(orderOf),
        revision: revision(),
      };
    },

    async cancel(id) {
      failIfAsked("cancel");
      const entry = find(id);
      if (!entry || !acknowledged(entry)) throw new OrderNotFoundError(id);
      if (entry.order.status !== "confirmed") {
        throw new OrderNotCancellableError(id, entry.order.status);
      }
      Object.assign(entry.order, {
        status: "cancelled",
        version: entry.order.version + 1n,
        updateTime: tick(),
      });
      record("updated", entry);
      return orderOf(entry);
    },

    async *changes(after, signal, userId) {
      failIfAsked("changes");
      let cursor = after;
      let first = true;
      while (!signal.aborted) {
        const newer = log.filter((event) => event.revision > cursor);
        if (newer.length > 0 || first) {
          first = false;
          cursor = newer.at(-1)?.revision ?? cursor;
          const events = newer.filter(
            (event) => userId === undefined || event.order.userId === userId,
          );
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

/** A user directory whose users a test sets, and which can be made to fail. */
export interface FakeUserDirectory extends UserDirectory {
  set(userId: string, status: "active" | "suspended"): void;
  /** Makes the next lookup throw `error` (an upstream that is down, say). */
  failNext(error: Error): void;
}

/** Creates a directory that knows the given users. */
export function createFakeUserDirectory(
  users: Record<string, "active" | "suspended"> = {},
): FakeUserDirectory {
  const statuses = new Map(Object.entries(users));
  let failure: Error | undefined;
  return {
    set: (userId, status) => statuses.set(userId, status),
    failNext(error) {
      failure = error;
    },
    async statusOf(userId) {
      if (failure) {
        const error = failure;
        failure = undefined;
        throw error;
      }
      return statuses.get(userId);
    },
  };
}

/** The inventory as the orders domain sees it, with what a test needs to look inside it. */
export interface FakeStockKeeper extends StockKeeper {
  /** The units of `sku` that can still be ordered. */
  stock(sku: string): bigint | undefined;
  /** Makes the next call of `method` throw `error` (an upstream that is down, say). */
  failNext(method: keyof StockKeeper, error: Error): void;
}

/**
 * Holds stock per order id with the inventory service's semantics as the StockKeeper adapter
 * reports them: all or nothing, idempotent per order id, unknown or short products and other items
 * for the same order a StockUnavailableError, a released reservation an OrderRetryLaterError.
 */
export function createFakeStockKeeper(
  catalog: Record<string, { priceCents: bigint; stock: bigint }>,
): FakeStockKeeper {
  const products = new Map(Object.entries(catalog).map(([sku, product]) => [sku, { ...product }]));
  const reservations = new Map<string, { items: RequestedItem[]; status: "held" | "released" }>();
  const failures = new Map<keyof StockKeeper, Error>();
  const failIfAsked = (method: keyof StockKeeper) => {
    const error = failures.get(method);
    if (error) {
      failures.delete(method);
      throw error;
    }
  };
  const prices = (items: readonly RequestedItem[]) =>
    new Map(items.map((item) => [item.sku, products.get(item.sku)?.priceCents ?? 0n]));
  const key = (items: readonly RequestedItem[]) =>
    JSON.stringify(
      [...items].sort((a, b) => (a.sku < b.sku ? -1 : 1)).map((i) => [i.sku, String(i.quantity)]),
    );

  return {
    stock: (sku) => products.get(sku)?.stock,
    failNext(method, error) {
      failures.set(method, error);
    },
    async reserve(orderId, items) {
      failIfAsked("reserve");
      const existing = reservations.get(orderId);
      if (existing) {
        if (existing.status === "released") {
          // As the adapter reports the inventory's `aborted` for a released reservation.
          throw new OrderRetryLaterError(`the reservation of order ${orderId} was released`);
        }
        if (key(existing.items) !== key(items)) {
          throw new StockUnavailableError(`order ${orderId} already has another reservation`);
        }
        return prices(items);
      }
      for (const item of items) {
        const product = products.get(item.sku);
        if (!product) throw new StockUnavailableError(`product ${item.sku} not found`);
        if (product.stock < item.quantity) {
          throw new StockUnavailableError(`product ${item.sku} has ${product.stock} in stock`);
        }
      }
      for (const item of items) {
        const product = products.get(item.sku);
        if (product) product.stock -= item.quantity;
      }
      reservations.set(orderId, { items: [...items], status: "held" });
      return prices(items);
    },
    async release(orderId) {
      failIfAsked("release");
      const existing = reservations.get(orderId);
      if (!existing || existing.status === "released") return;
      for (const item of existing.items) {
        const product = products.get(item.sku);
        if (product) product.stock += item.quantity;
      }
      existing.status = "released";
    },
  };
}
