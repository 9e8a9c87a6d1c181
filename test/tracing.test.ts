// One CreateOrder produces spans from orders, users and inventory under one trace id, with the
// right parent-child links, over each protocol. The three services run as real processes
// configured only by the standard OTEL_* variables, exporting OTLP to a receiver this test runs.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createTestDatabase, freePort, type TestDatabase, waitUntilServing } from "@shop/testing";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
}

const spans: ReceivedSpan[] = [];
let receiver: Server;
let database: TestDatabase;
const children: ChildProcess[] = [];
const ports: Record<string, number> = {};

/** A minimal OTLP/HTTP JSON receiver: it records every span with its resource's service.name. */
function startReceiver(): Promise<number> {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const payload = JSON.parse(body) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeSpans: { spans: Omit<ReceivedSpan, "service">[] }[];
          }[];
        };
        for (const resourceSpans of payload.resourceSpans) {
          const service =
            resourceSpans.resource.attributes.find((a) => a.key === "service.name")?.value
              .stringValue ?? "";
          for (const scope of resourceSpans.scopeSpans) {
            for (const span of scope.spans) spans.push({ ...span, service });
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  return new Promise((resolve) =>
    receiver.listen(0, "127.0.0.1", () => {
      const address = receiver.address();
      resolve(typeof address === "object" && address ? address.port : 0);
    }),
  );
}

before(async () => {
  database = await createTestDatabase();
  const receiverPort = await startReceiver();
  for (const name of ["users", "inventory", "orders"]) ports[name] = await freePort();
  for (const name of ["users", "inventory", "orders"]) {
    const child = spawn(process.execPath, [path.join(root, "services", name, "src", "main.ts")], {
      cwd: root,
      env: {
        ...process.env,
        PORT: String(ports[name]),
        HOST: "127.0.0.1",
        DATABASE_URL: database.url,
        LOG_LEVEL: "warn",
        AUTH: "off",
        USERS_URL: `http://127.0.0.1:${ports.users}`,
        INVENTORY_URL: `http://127.0.0.1:${ports.inventory}`,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiverPort}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "50",
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    children.push(child);
  }
  await Promise.all(Object.values(ports).map((port) => waitUntilServing(port)));
});

after(async () => {
  await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          child.once("exit", resolve);
          child.kill("SIGTERM");
        }),
    ),
  );
  receiver.close();
  await database.drop();
});

const transports: Record<string, (baseUrl: string) => Transport> = {
  connect: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  grpc: (baseUrl) => createGrpcTransport({ baseUrl }),
  "grpc-web": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

for (const [protocol, transport] of Object.entries(transports)) {
  test(`one CreateOrder over ${protocol} is one trace across orders, users and inventory`, async () => {
    const users = createClient(UserService, transport(`http://127.0.0.1:${ports.users}`));
    const orders = createClient(OrderService, transport(`http://127.0.0.1:${ports.orders}`));
    const { user } = await users.createUser({
      name: "Tracy",
      email: `tracy-${protocol}@example.com`,
    });
    const { order } = await orders.createOrder({
      userId: user?.id ?? "",
      items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
      requestId: crypto.randomUUID(),
    });
    assert.ok(order?.id);

    // The root of the trace is the orders server span of this CreateOrder.
    let trace: ReceivedSpan[] = [];
    const deadline = Date.now() + 10_000;
    for (;;) {
      const roots = spans.filter(
        (span) =>
          span.service === "orders" && span.name === "shop.order.v1.OrderService/CreateOrder",
      );
      const root = roots.at(-1);
      trace = root ? spans.filter((span) => span.traceId === root.traceId) : [];
      const services = new Set(trace.filter((span) => span.kind === 2).map((span) => span.service));
      if (services.has("users") && services.has("inventory") && services.has("orders")) break;
      if (Date.now() > deadline) assert.fail(`incomplete trace: ${JSON.stringify(trace, null, 1)}`);
      await sleep(50);
    }
    const byId = new Map(trace.map((span) => [span.spanId, span]));
    const server = (service: string, name: string) => {
      const span = trace.find((s) => s.service === service && s.kind === 2 && s.name === name);
      assert.ok(span, `${service} server span ${name}`);
      return span;
    };
    const root = server("orders", "shop.order.v1.OrderService/CreateOrder");
    assert.ok(!root.parentSpanId || !byId.has(root.parentSpanId), "CreateOrder is the root here");
    for (const [service, name] of [
      ["users", "shop.user.v1.UserService/GetUser"],
      ["inventory", "shop.inventory.v1.InventoryService/ReserveStock"],
    ] as const) {
      const upstream = server(service, name);
      // server span <- orders' client span <- orders' CreateOrder server span
      const clientSpan = byId.get(upstream.parentSpanId);
      assert.ok(clientSpan, `${name} has its caller's span as parent`);
      assert.equal(clientSpan.service, "orders");
      assert.equal(clientSpan.kind, 3, "the parent is a CLIENT span");
      assert.equal(
        clientSpan.parentSpanId,
        root.spanId,
        "the client span is a child of CreateOrder",
      );
    }
    const databaseSpans = trace.filter((span) => span.name.startsWith("db "));
    assert.ok(
      databaseSpans.some((span) => span.service === "orders" && span.parentSpanId === root.spanId),
      "orders' database work is traced under CreateOrder",
    );
    assert.ok(databaseSpans.some((span) => span.service === "inventory"));
  });
}

test("a snapshot page is traced once, by the read behind it, however many watchers it serves", async () => {
  const users = createClient(
    UserService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${ports.users}` }),
  );
  const pagesRead = async () => {
    const text = await (await fetch(`http://127.0.0.1:${ports.users}/metrics`)).text();
    const line = text
      .split("\n")
      .find((l) => l.startsWith('change_feed_snapshot_pages_total{schema="users",source="read"}'));
    return Number(line?.split(" ").at(-1) ?? 0);
  };
  const tracedReads = () =>
    spans.filter((span) => span.service === "users" && span.name === "db users.snapshotPage")
      .length;
  const readsBefore = await pagesRead();
  const tracedBefore = tracedReads();
  /** Opens a watch from revision 0 and closes it once it has its first response. */
  const firstResponse = async () => {
    const abort = new AbortController();
    for await (const _ of users.watchUsers({ startRevision: 0n }, { signal: abort.signal })) break;
    abort.abort();
  };
  // The first watcher reads the page; four more, asking while it is kept, get it shared.
  await firstResponse();
  await Promise.all([firstResponse(), firstResponse(), firstResponse(), firstResponse()]);
  const reads = (await pagesRead()) - readsBefore;
  assert.ok(reads >= 1 && reads < 5, `${reads} reads for 5 watchers: the page was not shared`);
  const deadline = Date.now() + 10_000;
  while (tracedReads() - tracedBefore < reads && Date.now() < deadline) await sleep(50);
  await sleep(300);
  assert.equal(tracedReads() - tracedBefore, reads, "one span per read, none per watcher");
});
