import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import type { RunningService, ServiceDefinition } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase } from "@shop/testing";
import { inventoryService } from "../../inventory/src/app.ts";
import { usersService } from "../../users/src/app.ts";
import { ordersService } from "../src/app.ts";

/** The three services running against one fresh database, and a client of each. */
export interface Shop {
  database: TestDatabase;
  users: RunningService;
  inventory: RunningService;
  orders: RunningService;
  usersClient: Client<typeof UserService>;
  inventoryClient: Client<typeof InventoryService>;
  /** An orders client over gRPC; `ordersClientOver` gives one over another transport. */
  ordersClient: Client<typeof OrderService>;
  ordersClientOver(transport: (baseUrl: string) => Transport): Client<typeof OrderService>;
  /** Stops what is still running, orders first, and drops the database. */
  stop(): Promise<void>;
}

/**
 * Starts users, inventory (with the demo catalog) and orders, which calls the other two at their
 * real URLs, as `npm start` does but on free ports and a database of its own.
 */
export async function startShop(): Promise<Shop> {
  const database = await createTestDatabase();
  const started: RunningService[] = [];
  const start = async <T extends Record<string, unknown>>(definition: ServiceDefinition<T>) => {
    const service = stopOnce(await startTestService(definition, database.url));
    started.push(service);
    return service;
  };
  const stopAll = async () => {
    for (const service of [...started].reverse()) await service.stop(100);
    await database.drop();
  };
  try {
    const users = await start(usersService);
    const inventory = await start(inventoryService({ seedDemoCatalog: true }));
    const orders = await start(
      ordersService({
        usersUrl: users.server.url,
        inventoryUrl: inventory.server.url,
        upstreamTimeoutMs: 2_000,
      }),
    );
    const grpc = (baseUrl: string) => createGrpcTransport({ baseUrl });
    return {
      database,
      users,
      inventory,
      orders,
      usersClient: createClient(UserService, grpc(users.server.url)),
      inventoryClient: createClient(InventoryService, grpc(inventory.server.url)),
      ordersClient: createClient(OrderService, grpc(orders.server.url)),
      ordersClientOver: (transport) => createClient(OrderService, transport(orders.server.url)),
      stop: stopAll,
    };
  } catch (error) {
    await stopAll().catch(() => {});
    throw error;
  }
}

/** Lets a test stop a service early (an upstream that goes down) and the teardown stop it again. */
function stopOnce(service: RunningService): RunningService {
  let stopping: Promise<void> | undefined;
  return { ...service, stop: (graceMs) => (stopping ??= service.stop(graceMs)) };
}
