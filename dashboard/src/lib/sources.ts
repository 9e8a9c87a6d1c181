import type { Client } from "@connectrpc/connect";
import type { Product } from "@shop/api/shop/inventory/v1/inventory_pb";
import type { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import type { Order, OrderStatus } from "@shop/api/shop/order/v1/order_pb";
import type { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import type { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { CollectionSource } from "./live-collection.ts";
import type { PageSource } from "./live-page.ts";

const pageSize = 500;

/** The users of UserService, watched by WatchUsers and listed by ListUsers. */
export function userSource(client: Client<typeof UserService>): CollectionSource<User> {
  return {
    key: (user) => user.id,
    version: (user) => user.version,
    async *watch(startRevision, signal) {
      for await (const response of client.watchUsers({ startRevision }, { signal })) {
        yield {
          revision: response.revision,
          events: response.events.map((event) => ({
            type: event.type,
            item: event.user,
            revision: event.revision,
          })),
        };
      }
    },
    async list(pageToken, signal) {
      const page = await client.listUsers({ pageSize, pageToken }, { signal });
      return { items: page.users, nextPageToken: page.nextPageToken, revision: page.revision };
    },
  };
}

/** All orders of OrderService, watched by WatchOrders and listed by ListOrders. */
export function orderSource(client: Client<typeof OrderService>): CollectionSource<Order> {
  return {
    key: (order) => order.id,
    version: (order) => order.version,
    async *watch(startRevision, signal) {
      for await (const response of client.watchOrders({ startRevision }, { signal })) {
        yield {
          revision: response.revision,
          events: response.events.map((event) => ({
            type: event.type,
            item: event.order,
            revision: event.revision,
          })),
        };
      }
    },
    async list(pageToken, signal) {
      const page = await client.listOrders({ pageSize, pageToken }, { signal });
      return { items: page.orders, nextPageToken: page.nextPageToken, revision: page.revision };
    },
  };
}

/** The catalog of InventoryService with its stock, watched by WatchStock. */
export function productSource(client: Client<typeof InventoryService>): CollectionSource<Product> {
  return {
    key: (product) => product.sku,
    version: (product) => product.version,
    async *watch(startRevision, signal) {
      for await (const response of client.watchStock({ startRevision }, { signal })) {
        yield {
          revision: response.revision,
          events: response.events.map((event) => ({
            type: event.type,
            item: event.product,
            revision: event.revision,
          })),
        };
      }
    },
    async list(pageToken, signal) {
      const page = await client.listProducts({ pageSize, pageToken }, { signal });
      return {
        items: page.products,
        nextPageToken: page.nextPageToken,
        revision: page.revision,
      };
    },
  };
}

/** What the users page filters by: a text in the name or email. */
export interface UserFilter {
  query: string;
}

/** ListUsers one page at a time, newest first, filtered by name or email on the server. */
export function userPages(client: Client<typeof UserService>): PageSource<User, UserFilter> {
  return {
    key: (user) => user.id,
    version: (user) => user.version,
    async list(filter, pageToken, pageSize, signal) {
      const page = await client.listUsers(
        { query: filter.query, newestFirst: true, pageSize, pageToken },
        { signal },
      );
      return {
        items: page.users,
        nextPageToken: page.nextPageToken,
        revision: page.revision,
        total: page.totalSize,
      };
    },
    // As the service matches: the text in the name or the email, ignoring case.
    matches(filter, user) {
      const query = filter.query.toLowerCase();
      return user.name.toLowerCase().includes(query) || user.email.toLowerCase().includes(query);
    },
  };
}

/** What the orders page filters by: the customer, the status. */
export interface OrderFilter {
  userId?: string | undefined;
  status?: OrderStatus | undefined;
}

/** ListOrders one page at a time, newest first, filtered by customer and status on the server. */
export function orderPages(client: Client<typeof OrderService>): PageSource<Order, OrderFilter> {
  return {
    key: (order) => order.id,
    version: (order) => order.version,
    async list(filter, pageToken, pageSize, signal) {
      const page = await client.listOrders(
        { userId: filter.userId, status: filter.status, pageSize, pageToken },
        { signal },
      );
      return {
        items: page.orders,
        nextPageToken: page.nextPageToken,
        revision: page.revision,
        total: page.totalSize,
      };
    },
    matches: (filter, order) =>
      (filter.userId === undefined || order.userId === filter.userId) &&
      (filter.status === undefined || order.status === filter.status),
  };
}

/** The revision users are at now, where a watch of their changes alone starts. */
export function usersHead(client: Client<typeof UserService>) {
  return async (signal: AbortSignal) =>
    (await client.listUsers({ pageSize: 1 }, { signal })).revision;
}

/** The revision orders are at now (of the caller's orders, for a customer). */
export function ordersHead(client: Client<typeof OrderService>) {
  return async (signal: AbortSignal) =>
    (await client.listOrders({ pageSize: 1 }, { signal })).revision;
}
