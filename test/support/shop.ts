// The three services as separate processes on one fresh database, authentication off, for the
// hostile-input tests; and the liveness checks those tests make after each attack.
import * as http2 from "node:http2";
import {
  createTestDatabase,
  readMetric,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
} from "@shop/testing";

/** users, inventory and orders, each its own process, orders wired to the other two. */
export interface Shop {
  database: TestDatabase;
  users: ServiceProcess;
  inventory: ServiceProcess;
  orders: ServiceProcess;
  stop(): Promise<void>;
}

/** Starts the shop with `env` added to every service's environment. */
export async function startShop(env: Record<string, string> = {}): Promise<Shop> {
  const database = await createTestDatabase();
  const common = { DATABASE_URL: database.url, AUTH: "off", ...env };
  const [users, inventory] = await Promise.all([
    startServiceProcess("users", common),
    startServiceProcess("inventory", common),
  ]);
  const orders = await startServiceProcess("orders", {
    ...common,
    USERS_URL: users.url,
    INVENTORY_URL: inventory.url,
  });
  return {
    database,
    users,
    inventory,
    orders,
    async stop() {
      await Promise.all([orders.kill(), inventory.kill(), users.kill()]);
      await database.drop();
    },
  };
}

/**
 * When the process behind `baseUrl` started (its `process_start_time_seconds`): the same value
 * later proves that the process answering is the one that was attacked, not a replacement.
 */
export function startTimeOf(baseUrl: string): Promise<number> {
  return readMetric(baseUrl, "process_start_time_seconds");
}

/** True when `/healthz` answers 200 within `timeoutMs`. */
export async function isAlive(baseUrl: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** The status `grpc.health.v1.Health/Check` reports over a raw HTTP/2 request (1 is SERVING). */
export function grpcHealthStatus(baseUrl: string, timeoutMs = 2_000): Promise<number | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(baseUrl);
    const done = (status: number | undefined) => {
      clearTimeout(timer);
      session.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    session.on("error", () => done(undefined));
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => done(undefined));
    stream.on("end", () => {
      // HealthCheckResponse { status = 1 } is the single message `08 <status>`, or empty for 0.
      const body = Buffer.concat(chunks);
      if (body.length < 5) return done(undefined);
      const message = body.subarray(5, 5 + body.readUInt32BE(1));
      done(message.length >= 2 && message[0] === 0x08 ? message[1] : 0);
    });
    // An empty HealthCheckRequest (all services) in a gRPC envelope.
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}
