import { fileURLToPath } from "node:url";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createUpstreamClient, type ServiceDefinition, traceRepository } from "@shop/mesh";
import { compensateStaleOrders } from "./domain/compensate-stale-orders.ts";
import { createOrderStore } from "./store/order-store.ts";
import { tables } from "./store/schema.ts";
import { orderRoutes } from "./transport/routes.ts";
import { createStockKeeper } from "./upstream/stock-keeper.ts";
import { createUserDirectory } from "./upstream/user-directory.ts";

/** Where the orders service finds its upstreams, and its saga timings. */
export interface OrdersOptions {
  usersUrl: string;
  inventoryUrl: string;
  upstreamTimeoutMs: number;
  /** Defaults: 10 s, 2 s and 24 h, as in the service's configuration. */
  pendingTimeoutMs?: number;
  sweepIntervalMs?: number;
  requestIdTtlMs?: number;
  /** The service's own token for its calls to users and inventory (see serviceCredentials). */
  credentials?: () => Promise<string>;
}

/**
 * What the orders service keeps in PostgreSQL: its schema, tables and migrations (applied on start,
 * and by scripts/migrate.ts).
 */
export const ordersStorage = {
  name: "orders",
  schema: "orders",
  tables,
  migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
};

/** The orders service as the mesh runtime runs it. */
export function ordersService(options: OrdersOptions): ServiceDefinition<typeof tables> {
  const users = createUpstreamClient(UserService, {
    name: "users",
    baseUrl: options.usersUrl,
    defaultTimeoutMs: options.upstreamTimeoutMs,
    credentials: options.credentials,
  });
  const inventory = createUpstreamClient(InventoryService, {
    name: "inventory",
    baseUrl: options.inventoryUrl,
    defaultTimeoutMs: options.upstreamTimeoutMs,
    credentials: options.credentials,
  });
  const stock = createStockKeeper(inventory);
  return {
    ...ordersStorage,
    services: [OrderService],
    routes: ({ database, feed }) =>
      orderRoutes({
        orders: traceRepository(createOrderStore(database, feed), "orders"),
        users: createUserDirectory(users),
        stock,
      }),
    background({ database, feed, logger }) {
      const orders = createOrderStore(database, feed);
      const policy = { pendingTimeoutMs: options.pendingTimeoutMs ?? 10_000, batchSize: 100 };
      const ttl = options.requestIdTtlMs ?? 24 * 60 * 60 * 1000;
      let running: Promise<void> | undefined;
      const sweep = () => {
        running ??= (async () => {
          try {
            const { compensated, failed } = await compensateStaleOrders({ orders, stock }, policy);
            if (compensated.length > 0)
              logger.info({ compensated }, "rolled back stale pending orders");
            if (failed.length > 0)
              logger.warn({ failed }, "could not roll back orders yet; will retry");
            const expired = await orders.expireRequestIds(ttl);
            if (expired > 0) logger.info({ expired }, "forgot expired request ids");
          } catch (error) {
            logger.warn({ err: error }, "order sweep failed; will retry");
          } finally {
            running = undefined;
          }
        })();
      };
      // At start too: orders a crash left pending are rolled back without waiting for a client.
      sweep();
      const timer = setInterval(sweep, options.sweepIntervalMs ?? 2_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
