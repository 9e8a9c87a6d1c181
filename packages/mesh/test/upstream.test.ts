// The outbound call policy against real servers: the circuit breaker fails fast while an upstream
// is down, probes once per open period and closes when it is back; calls are balanced over two
// instances, and killing one loses no call that may be retried.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createLogger, createUpstream, defaultLimits, type Server, serve } from "@shop/mesh";

const logger = createLogger("upstream-test", "silent");
const servers: Server[] = [];
after(() => Promise.all(servers.map((server) => server.close(50))));

/** A users server whose GetUser answers with `behaviour()` and counts its calls. */
async function fakeUsers(behaviour: () => "ok" | "unavailable") {
  const state = { calls: 0 };
  const server = await serve({
    name: "fake-users",
    services: [UserService],
    // The ids here are labels, not users: this test is about serving, and the contract's rules
    // (an id is a UUID) would refuse them first.
    validateRequests: false,
    routes: (router) =>
      router.service(UserService, {
        getUser(req) {
          state.calls++;
          if (behaviour() === "unavailable") throw new ConnectError("down", Code.Unavailable);
          return { user: { id: req.id, name: "N", email: "n@example.com" } };
        },
      }),
    port: 0,
    host: "127.0.0.1",
    limits: defaultLimits,
    corsOrigins: [],
    logger,
    readiness: async () => ({ ok: true }),
  });
  servers.push(server);
  return { server, state };
}

test("the breaker opens on a failing upstream, fails fast, probes once per open period, then closes", async () => {
  let mode: "ok" | "unavailable" = "unavailable";
  const users = await fakeUsers(() => mode);
  const upstream = createUpstream(UserService, {
    name: "users-breaker-test",
    baseUrl: users.server.url,
    retry: { maxAttempts: 1 },
    breaker: { volumeThreshold: 5, errorThresholdPercentage: 50, openMs: 500 },
  });
  for (let i = 0; i < 5; i++) {
    await assert.rejects(upstream.client.getUser({ id: "u" }), { code: Code.Unavailable });
  }
  assert.equal(upstream.breakerState(), "open");
  const metrics = await (await fetch(`${users.server.url}/metrics`)).text();
  assert.match(metrics, /upstream_circuit_breaker_state\{upstream="users-breaker-test"\} 2/);
  const callsWhenOpened = users.state.calls;

  const started = performance.now();
  await assert.rejects(upstream.client.getUser({ id: "u" }), (error: unknown) => {
    return (
      error instanceof ConnectError &&
      error.code === Code.Unavailable &&
      /circuit open/.test(error.rawMessage)
    );
  });
  assert.ok(performance.now() - started < 5, "an open breaker answers in under 5 ms");
  assert.equal(users.state.calls, callsWhenOpened, "the upstream is not called while open");

  // After the open period exactly one probe goes through; concurrent calls are still refused.
  await sleep(550);
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => upstream.client.getUser({ id: "u" })),
  );
  assert.equal(users.state.calls, callsWhenOpened + 1, "one probe per open period");
  assert.ok(results.every((result) => result.status === "rejected"));
  assert.equal(upstream.breakerState(), "open", "the failed probe opens the breaker again");

  mode = "ok";
  await sleep(550);
  const { user } = await upstream.client.getUser({ id: "u" });
  assert.equal(user?.id, "u");
  assert.equal(upstream.breakerState(), "closed", "a successful probe closes the breaker");
  await upstream.client.getUser({ id: "u2" });
});

test("calls are spread over two instances, and killing one loses no retryable call", async () => {
  const a = await fakeUsers(() => "ok");
  const b = await fakeUsers(() => "ok");
  const upstream = createUpstream(UserService, {
    name: "users",
    baseUrl: `${a.server.url},${b.server.url}`,
  });
  for (let i = 0; i < 40; i++) await upstream.client.getUser({ id: `u${i}` });
  assert.ok(
    a.state.calls >= 15 && b.state.calls >= 15,
    `spread: ${a.state.calls} / ${b.state.calls}`,
  );

  const calls = Array.from({ length: 200 }, async (_, i) => {
    await sleep(i);
    return upstream.client.getUser({ id: `k${i}` });
  });
  await sleep(50);
  await a.server.close(0);
  const results = await Promise.allSettled(calls);
  const failed = results.filter((result) => result.status === "rejected");
  assert.equal(
    failed.length,
    0,
    `lost calls: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join("; ")}`,
  );
  assert.ok(b.state.calls > 100, "the surviving instance took over");
});
