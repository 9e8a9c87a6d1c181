// Issue 6, point 5 and issue 7: CreateOrder end to end — a gRPC client (grpc-js) → orders →
// users (GetUser) and inventory (ReserveStock) → PostgreSQL — at concurrency 32, against the same
// SQL issued directly (bench/lib/direct-sql.ts), which is the database's limit for this work.
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import postgres from "postgres";
import { type ClosedLoopResult, closedLoop } from "../lib/closed-loop.ts";
import { cpuSecondsOf, type Pinning, pinnedCommand, root } from "../lib/processes.ts";
import { type ServiceProcess, startService } from "../lib/services.ts";
import { median, percentile, sortedSamples } from "../lib/stats.ts";

const run = promisify(execFile);

/** The three services, the users and products orders are placed with, and a way to place them. */
export interface Shop {
  /** CPU seconds of the PostgreSQL server so far, when it can be measured. */
  postgresCpu: (() => number) | undefined;
  users: ServiceProcess;
  inventory: ServiceProcess;
  orders: ServiceProcess;
  userIds: string[];
  skus: string[];
  databaseUrl: string;
  /** Places one order through the orders service with a grpc-js client. */
  placeOrder(n: number): Promise<void>;
  /** Confirmed orders in the database. */
  confirmedOrders(): Promise<number>;
  stop(): Promise<void>;
}

type CreateOrderClient = grpc.Client & {
  CreateOrder(
    request: unknown,
    options: grpc.CallOptions,
    callback: (
      error: grpc.ServiceError | null,
      response: { order?: { id: string; status: string } },
    ) => void,
  ): void;
};

/**
 * Starts users, inventory and orders as processes (as `npm start` does), creates `userCount`
 * users, and adds plenty of stock to every product of the demo catalog.
 */
export async function startShop(options: {
  databaseUrl: string;
  pinning: Pinning;
  userCount: number;
  /** Extra node flags per service (--cpu-prof, say). */
  nodeFlags?: (service: string) => string[];
  /** CPU seconds of the PostgreSQL server so far, when it can be measured. */
  postgresCpu?: () => number;
}): Promise<Shop> {
  const { databaseUrl, pinning, userCount, postgresCpu } = options;
  const nodeFlags = options.nodeFlags ?? (() => []);
  const env = { DATABASE_URL: databaseUrl };
  const [users, inventory] = await Promise.all([
    startService("users", env, pinning, nodeFlags("users")),
    startService("inventory", env, pinning, nodeFlags("inventory")),
  ]);
  const orders = await startService(
    "orders",
    { ...env, USERS_URL: users.url, INVENTORY_URL: inventory.url },
    pinning,
    nodeFlags("orders"),
  );
  const userClient = createClient(UserService, createGrpcTransport({ baseUrl: users.url }));
  const inventoryClient = createClient(
    InventoryService,
    createGrpcTransport({ baseUrl: inventory.url }),
  );
  const userIds: string[] = [];
  for (let i = 0; i < userCount; i++) {
    const { user } = await userClient.createUser({
      name: `Order Bench ${i}`,
      email: `orders-${i}-${randomUUID()}@example.com`,
    });
    if (user) userIds.push(user.id);
  }
  const { products } = await inventoryClient.listProducts({ pageSize: 100 });
  const skus = products.map((product) => product.sku);
  for (const sku of skus) await inventoryClient.adjustStock({ sku, delta: 1_000_000_000n });

  const definition = protoLoader.loadSync(
    path.join(root, "proto/shop/order/v1/order_service.proto"),
    {
      includeDirs: [path.join(root, "proto")],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
    },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    shop: {
      order: {
        v1: {
          OrderService: new (
            address: string,
            credentials: grpc.ChannelCredentials,
          ) => CreateOrderClient;
        };
      };
    };
  };
  const client = new loaded.shop.order.v1.OrderService(
    `127.0.0.1:${orders.port}`,
    grpc.credentials.createInsecure(),
  );
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  return {
    postgresCpu,
    users,
    inventory,
    orders,
    userIds,
    skus,
    databaseUrl,
    placeOrder: (n) =>
      new Promise<void>((resolve, reject) => {
        client.CreateOrder(
          {
            user_id: userIds[n % userIds.length],
            items: [{ sku: skus[n % skus.length], quantity: "1" }],
            request_id: randomUUID(),
          },
          { deadline: Date.now() + 10_000 },
          (error, response) => {
            if (error) reject(error);
            else if (response.order?.status !== "ORDER_STATUS_CONFIRMED")
              reject(new Error(`order came back ${response.order?.status}`));
            else resolve();
          },
        );
      }),
    async confirmedOrders() {
      const [row] = await sql<{ n: string }[]>`
        select count(*)::text as n from orders.orders where status = 'confirmed'`;
      return Number(row?.n ?? 0);
    },
    async stop() {
      client.close();
      await sql.end();
      await orders.stop();
      await Promise.all([users.stop(), inventory.stop()]);
    },
  };
}

/** A measured run, the orders found stored afterwards, and the CPU each process spent per order. */
export type OrderRun = ClosedLoopResult & {
  stored: number;
  /** CPU milliseconds per acknowledged order (warm-up included), by process. */
  cpuMsPerOrder: Record<string, number>;
};

function perOrder(seconds: number, orders: number): number {
  return orders > 0 ? Math.round((seconds / orders) * 1e6) / 1e3 : Number.NaN;
}

/** One measured run of CreateOrder through the services. */
export async function ordersThroughServices(
  shop: Shop,
  shape: { concurrency: number; seconds: number; warmupSeconds: number },
): Promise<OrderRun> {
  const before = await shop.confirmedOrders();
  const processes = [shop.orders, shop.users, shop.inventory];
  const cpuBefore = processes.map((service) => cpuSecondsOf(service.pid));
  const postgresBefore = shop.postgresCpu?.() ?? Number.NaN;
  const clientBefore = process.cpuUsage();
  const result = await closedLoop({ ...shape, call: shop.placeOrder });
  const client = process.cpuUsage(clientBefore);
  const postgresSeconds = (shop.postgresCpu?.() ?? Number.NaN) - postgresBefore;
  const cpuMsPerOrder: Record<string, number> = {};
  processes.forEach((service, i) => {
    cpuMsPerOrder[service.name] = perOrder(
      cpuSecondsOf(service.pid) - (cpuBefore[i] ?? 0),
      result.succeededTotal,
    );
  });
  cpuMsPerOrder.postgres = perOrder(postgresSeconds, result.succeededTotal);
  cpuMsPerOrder.client = perOrder((client.user + client.system) / 1e6, result.succeededTotal);
  const stored = (await shop.confirmedOrders()) - before;
  return { ...result, stored, cpuMsPerOrder };
}

/** One measured run of the same SQL issued directly, in a process on the server cores. */
export async function ordersDirectSql(
  shop: Shop,
  pinning: Pinning,
  shape: { concurrency: number; seconds: number; warmupSeconds: number },
): Promise<OrderRun> {
  const before = await shop.confirmedOrders();
  const postgresBefore = shop.postgresCpu?.() ?? Number.NaN;
  const options = {
    databaseUrl: shop.databaseUrl,
    users: shop.userIds,
    skus: shop.skus,
    ...shape,
  };
  const [command, args] = pinnedCommand(pinning, pinning.serverCpus, process.execPath, [
    path.join(root, "bench", "lib", "direct-sql.ts"),
    JSON.stringify(options),
  ]);
  const { stdout } = await run(command, args, { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const result = JSON.parse(stdout) as ClosedLoopResult & { cpuSeconds: number };
  const postgresSeconds = (shop.postgresCpu?.() ?? Number.NaN) - postgresBefore;
  const stored = (await shop.confirmedOrders()) - before;
  return {
    ...result,
    stored,
    cpuMsPerOrder: {
      "direct-sql": perOrder(result.cpuSeconds, result.succeededTotal),
      postgres: perOrder(postgresSeconds, result.succeededTotal),
    },
  };
}

/** One measured round as the report keeps it. */
export interface OrderRound {
  ordersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  cpuMsPerOrder: Record<string, number>;
}

/** The figures of one round of `run`. */
export function orderRound(run: OrderRun): OrderRound {
  const sorted = sortedSamples(run.latencies);
  return {
    ordersPerSecond: run.completed / run.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: run.errors,
    cpuMsPerOrder: run.cpuMsPerOrder,
  };
}

/** The rounds of one path (the services, or the direct SQL), with their medians and totals. */
export interface OrderRow {
  key: string;
  label: string;
  ordersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  firstError: string | undefined;
  /** Acknowledged orders (warm-up included) and confirmed orders found in the table afterwards. */
  acknowledged: number;
  stored: number;
  /** CPU milliseconds per order by process (median of the rounds). */
  cpuMsPerOrder: Record<string, number>;
  rounds: OrderRound[];
}

/** Medians over the rounds of `runs`, and the acknowledged and stored orders summed. */
export function summariseOrders(key: string, label: string, runs: readonly OrderRun[]): OrderRow {
  const rounds = runs.map(orderRound);
  const cpuMsPerOrder: Record<string, number> = {};
  for (const name of Object.keys(rounds[0]?.cpuMsPerOrder ?? {})) {
    cpuMsPerOrder[name] = median(rounds.map((r) => r.cpuMsPerOrder[name] ?? Number.NaN));
  }
  return {
    key,
    label,
    ordersPerSecond: median(rounds.map((r) => r.ordersPerSecond)),
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    errors: runs.reduce((sum, run) => sum + run.errors, 0),
    firstError: runs.find((run) => run.firstError !== undefined)?.firstError,
    acknowledged: runs.reduce((sum, run) => sum + run.succeededTotal, 0),
    stored: runs.reduce((sum, run) => sum + run.stored, 0),
    cpuMsPerOrder,
    rounds,
  };
}
