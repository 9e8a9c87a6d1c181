import { fileURLToPath } from "node:url";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createUpstreamClient, type ServiceDefinition, traceRepository } from "@shop/mesh";
import { createOrderStore } from "./store/order-store.ts";
import { tables } from "./store/schema.ts";
import { orderRoutes } from "./transport/routes.ts";
import { createStockKeeper } from "./upstream/stock-keeper.ts";
import { createUserDirectory } from "./upstream/user-directory.ts";

/** Where the orders service finds its upstreams. */
export interface OrdersOptions {
  usersUrl: string;
  inventoryUrl: string;
  upstreamTimeoutMs: number;
}

/** The orders service as the mesh runtime runs it. */
export function ordersService(options: OrdersOptions): ServiceDefinition<typeof tables> {
  const users = createUpstreamClient(UserService, {
    name: "users",
    baseUrl: options.usersUrl,
    defaultTimeoutMs: options.upstreamTimeoutMs,
  });
  const inventory = createUpstreamClient(InventoryService, {
    name: "inventory",
    baseUrl: options.inventoryUrl,
    defaultTimeoutMs: options.upstreamTimeoutMs,
  });
  return {
    name: "orders",
    schema: "orders",
    tables,
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
    services: [OrderService],
    routes: ({ database, feed }) =>
      orderRoutes({
        orders: traceRepository(createOrderStore(database, feed), "orders"),
        users: createUserDirectory(users),
        stock: createStockKeeper(inventory),
      }),
  };
}
