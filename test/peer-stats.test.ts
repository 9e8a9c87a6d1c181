// The figures of the edges between services, which the dashboard's topology draws: orders counts
// its calls to users and inventory (the client's side), users and inventory count the calls they
// answer by who made them (orders by its token, everyone else as "outside"); an upstream that is
// down shows as errors on the edge to it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { StatsService, type WatchStatsResponse } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { waitFor } from "@shop/testing";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

let mesh: AuthMesh;
let asAdmin: Interceptor;
before(async () => {
  mesh = await startAuthMesh();
  const token = await mesh.token({ subject: "admin", roles: ["admin"] });
  asAdmin = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
});
after(() => mesh.stop());

async function statsOf(url: string): Promise<WatchStatsResponse> {
  const client = createClient(
    StatsService,
    createGrpcTransport({ baseUrl: url, interceptors: [asAdmin] }),
  );
  for await (const response of client.watchStats({})) return response;
  throw new Error("no statistics");
}

const peer = (stats: WatchStatsResponse, side: "upstreams" | "callers", name: string) =>
  stats[side].find((row) => row.peer === name);

test("each edge between services has its rate, errors and latency, from both ends; a stopped upstream shows as errors on its edge", async () => {
  const users = createClient(
    UserService,
    createGrpcTransport({ baseUrl: mesh.users.server.url, interceptors: [asAdmin] }),
  );
  const orders = createClient(
    OrderService,
    createGrpcTransport({ baseUrl: mesh.orders.server.url, interceptors: [asAdmin] }),
  );
  const { user } = await users.createUser({
    name: "Edge Walker",
    email: `edge-${Date.now()}@example.com`,
  });
  const placed = 5;
  for (let i = 0; i < placed; i++) {
    await orders.createOrder({
      userId: user?.id ?? "",
      items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
      requestId: crypto.randomUUID(),
    });
  }
  const fromOrders = await statsOf(mesh.orders.server.url);
  for (const upstream of ["users", "inventory"]) {
    const edge = peer(fromOrders, "upstreams", upstream);
    assert.ok(edge, `orders counts its calls to ${upstream}`);
    assert.ok(Number(edge.totalRequests) >= placed, `${edge.totalRequests} calls to ${upstream}`);
    assert.equal(edge.totalErrors, 0n);
    assert.ok(edge.requestsPerSecond > 0 && edge.latencyP99Ms > 0);
  }
  const atUsers = await statsOf(mesh.users.server.url);
  assert.ok(Number(peer(atUsers, "callers", "orders")?.totalRequests) >= placed, "from orders");
  assert.ok(Number(peer(atUsers, "callers", "outside")?.totalRequests) >= 1, "CreateUser");
  const atInventory = await statsOf(mesh.inventory.server.url);
  assert.ok(Number(peer(atInventory, "callers", "orders")?.totalRequests) >= placed);

  // Inventory stops: orders' calls to it fail, and its edge says so.
  await mesh.inventory.stop(100);
  await assert.rejects(
    orders.createOrder({
      userId: user?.id ?? "",
      items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
      requestId: crypto.randomUUID(),
    }),
  );
  const failing = await waitFor(
    async () => {
      const edge = peer(await statsOf(mesh.orders.server.url), "upstreams", "inventory");
      return edge && edge.totalErrors > 0n && edge;
    },
    { message: "the inventory edge shows errors" },
  );
  assert.ok(failing.errorsPerSecond > 0);
  assert.equal(peer(await statsOf(mesh.orders.server.url), "upstreams", "users")?.totalErrors, 0n);
});
