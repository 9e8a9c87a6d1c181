import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { Health, type HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import type { Product } from "@shop/api/shop/inventory/v1/inventory_pb";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { StatsService, type WatchStatsResponse } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { TapService } from "@shop/api/shop/mesh/v1/tap_service_pb";
import type { Order } from "@shop/api/shop/order/v1/order_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import type { User } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createBearerInterceptor } from "./bearer.ts";
import { claimsOf, type Identity } from "./identity.ts";
import { createLiveCollection, type LiveCollection } from "./live-collection.ts";
import type { PageSource } from "./live-page.ts";
import { createLiveValue, type LiveValue } from "./live-value.ts";
import { type ServiceName, type ServiceUrls, serviceNames } from "./service-urls.ts";
import type { SessionStore } from "./session.ts";
import {
  type OrderFilter,
  orderPages,
  orderSource,
  ordersHead,
  productSource,
  type UserFilter,
  userPages,
  userSource,
  usersHead,
} from "./sources.ts";
import { shareCollection, shareValue } from "./tab-share.ts";
import { createUserNames, type UserNames } from "./user-names.ts";

/** Everything the pages use: the clients for actions, and the live streams. */
export interface Shop {
  urls: ServiceUrls;
  /** Who the calls are made as; undefined when sign-in is off (or nobody is signed in). */
  identity: Identity | undefined;
  users: Client<typeof UserService>;
  orders: Client<typeof OrderService>;
  inventory: Client<typeof InventoryService>;
  /** The users' changes, from when the dashboard opened: it holds no user (see userPages). */
  userList: LiveCollection<User>;
  /** The orders' changes, from when the dashboard opened: it holds no order (see orderPages). */
  orderList: LiveCollection<Order>;
  /** The whole catalog with its stock. */
  productList: LiveCollection<Product>;
  /** Users one filtered page at a time, for pages kept live by userList (live-page.ts). */
  userPages: PageSource<User, UserFilter>;
  /** Orders one filtered page at a time, for pages kept live by orderList. */
  orderPages: PageSource<Order, OrderFilter>;
  /** The users the pages name, fetched one by one as they are needed. */
  userNames: UserNames;
  /** grpc.health.v1.Health/Watch of each service; started by the pages that show it. */
  health: Record<ServiceName, LiveValue<HealthCheckResponse_ServingStatus>>;
  /** WatchStats of each service; started by the pages that show them. */
  stats: Record<ServiceName, LiveValue<WatchStatsResponse>>;
  /** The live tap of each service (admins), opened by the tap page. */
  tap: Record<ServiceName, Client<typeof TapService>>;
  start(): void;
  stop(): void;
}

const statsIntervalMs = 1_000;

/**
 * Builds the browser side of the dashboard: Connect clients (over fetch, straight to the services)
 * and the live collections and values fed by the services' streams. Every call carries the
 * session's bearer token. Nothing opens until `start()`.
 */
export function createShop(
  urls: ServiceUrls,
  session: SessionStore,
  identity: Identity | undefined,
): Shop {
  const interceptors = [createBearerInterceptor(session)];
  const transports = Object.fromEntries(
    serviceNames.map((name) => [
      name,
      createConnectTransport({ baseUrl: urls[name], interceptors }),
    ]),
  ) as Record<ServiceName, Transport>;
  const users = createClient(UserService, transports.users);
  const orders = createClient(OrderService, transports.orders);
  const inventory = createClient(InventoryService, transports.inventory);

  // The tabs of one identity share each stream (tab-share.ts): one tab reads it for all of them.
  const caller = identity ? `${identity.role}:${claimsOf(identity).subject}` : "anonymous";
  const shared = (stream: string, service: ServiceName) =>
    `shop-dashboard:${caller}:${urls[service]}:${stream}`;
  const perService = <T>(make: (transport: Transport, name: ServiceName) => T) =>
    Object.fromEntries(serviceNames.map((name) => [name, make(transports[name], name)])) as Record<
      ServiceName,
      T
    >;
  const health = perService((transport, name) => {
    const client = createClient(Health, transport);
    return createLiveValue(
      shareValue(shared("health", name), async function* (signal) {
        for await (const response of client.watch({ service: "" }, { signal })) {
          yield response.status;
        }
      }),
    );
  });
  const stats = perService((transport, name) => {
    const client = createClient(StatsService, transport);
    return createLiveValue(
      shareValue(shared("stats", name), (signal) =>
        client.watchStats({ intervalMs: statsIntervalMs }, { signal }),
      ),
    );
  });

  // Users and orders grow without bound: the dashboard follows their changes and lists the page
  // it shows, where the catalog is small enough to hold whole.
  const userList = createLiveCollection(
    shareCollection(shared("users", "users"), userSource(users)),
    { keep: "changes", head: usersHead(users) },
  );
  const orderList = createLiveCollection(
    shareCollection(shared("orders", "orders"), orderSource(orders)),
    { keep: "changes", head: ordersHead(orders) },
  );
  const userNames = createUserNames(async (id) => {
    try {
      return (await users.getUser({ id })).user ?? null;
    } catch (error) {
      if (ConnectError.from(error).code === Code.NotFound) return null;
      throw error;
    }
  }, userList);
  const productList = createLiveCollection(
    shareCollection(shared("stock", "inventory"), productSource(inventory)),
  );
  // Browsers open at most six HTTP/1.1 connections per service, shared by all tabs, and every open
  // stream holds one: a page keeps one per service open, the overview three, in one tab of all
  // that show it.
  const always = [userList, orderList, productList];
  // Back online after the network dropped: reconnect now rather than when the backoff ends.
  const reconnectAll = () => {
    for (const stream of [...always, ...Object.values(health), ...Object.values(stats)]) {
      stream.retryNow();
    }
  };

  return {
    urls,
    identity,
    users,
    orders,
    inventory,
    userList,
    orderList,
    productList,
    userPages: userPages(users),
    orderPages: orderPages(orders),
    userNames,
    health,
    stats,
    tap: perService((transport) => createClient(TapService, transport)),
    start() {
      for (const stream of always) stream.start();
      userNames.start();
      window.addEventListener("online", reconnectAll);
    },
    stop() {
      window.removeEventListener("online", reconnectAll);
      for (const stream of always) stream.stop();
      userNames.stop();
    },
  };
}
