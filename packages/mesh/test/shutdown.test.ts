// Graceful shutdown: health turns NOT_SERVING first, a unary call in flight finishes, open streams
// end with `unavailable` (so clients reconnect and resume) and the server stops within its grace.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "@shop/api/grpc/health/v1/health_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLogger, defaultLimits, serve } from "@shop/mesh";

test("SIGTERM-style close drains unary calls, ends streams with unavailable, and stops in time", async () => {
  let streamHandlerEnded = false;
  const server = await serve({
    name: "shutdown-test",
    services: [UserService],
    // The ids here are labels, not users: this test is about serving, and the contract's rules
    // (an id is a UUID) would refuse them first.
    validateRequests: false,
    routes: (router) =>
      router.service(UserService, {
        async getUser(req) {
          await sleep(300);
          return { user: { id: req.id } };
        },
        async *watchUsers(_req, context) {
          try {
            yield { revision: 1n };
            while (!context.signal.aborted) await sleep(20);
          } finally {
            streamHandlerEnded = true;
          }
        },
      }),
    port: 0,
    host: "127.0.0.1",
    limits: defaultLimits,
    corsOrigins: [],
    logger: createLogger("shutdown-test", "silent"),
    readiness: async () => ({ ok: true }),
  });
  server.health.setAll(Status.SERVING);
  const grpc = createGrpcTransport({ baseUrl: server.url });

  const healthUpdates: Status[] = [];
  const healthDone = (async () => {
    try {
      for await (const res of createClient(Health, grpc).watch({})) healthUpdates.push(res.status);
    } catch {
      // The watch itself ends with the shutdown.
    }
  })();
  const users = createClient(UserService, grpc);
  const stream = users.watchUsers({})[Symbol.asyncIterator]();
  assert.equal((await stream.next()).value?.revision, 1n);
  const connectUsers = createClient(
    UserService,
    createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
  );
  const inFlight = [users.getUser({ id: "a" }), connectUsers.getUser({ id: "b" })];
  await sleep(50);

  const started = performance.now();
  await server.close(2_000);
  const took = performance.now() - started;

  const finished = await Promise.all(inFlight);
  assert.deepEqual(
    finished.map((res) => res.user?.id),
    ["a", "b"],
    "unary calls in flight finish",
  );
  await assert.rejects(
    stream.next(),
    (error: unknown) => error instanceof ConnectError && error.code === Code.Unavailable,
  );
  await healthDone;
  assert.deepEqual(healthUpdates, [Status.SERVING, Status.NOT_SERVING], "NOT_SERVING comes first");
  assert.ok(took < 2_000, `closed in ${Math.round(took)} ms`);
  const deadline = Date.now() + 1_000;
  while (!streamHandlerEnded && Date.now() < deadline) await sleep(10);
  assert.ok(streamHandlerEnded, "the stream handler ran its cleanup");
});

test("streams that end leave no listener on the server's shutdown signal", async () => {
  const server = await serve({
    name: "shutdown-listeners",
    services: [UserService],
    routes: (router) =>
      router.service(UserService, {
        async *watchUsers() {
          for (let i = 1n; i <= 5n; i++) yield { revision: i };
        },
      }),
    port: 0,
    host: "127.0.0.1",
    limits: defaultLimits,
    corsOrigins: [],
    logger: createLogger("shutdown-listeners", "silent"),
    readiness: async () => ({ ok: true }),
  });
  try {
    // The server listens once itself; the streams add nothing that stays.
    const listening = getEventListeners(server.shutdownSignal, "abort").length;
    const users = createClient(UserService, createGrpcTransport({ baseUrl: server.url }));
    for (let i = 0; i < 50; i++) {
      const revisions: bigint[] = [];
      for await (const res of users.watchUsers({})) revisions.push(res.revision);
      assert.equal(revisions.length, 5);
    }
    assert.equal(getEventListeners(server.shutdownSignal, "abort").length, listening);
  } finally {
    await server.close(100);
  }
});
