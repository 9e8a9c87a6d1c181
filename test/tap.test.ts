// The runtime's tap (shop.mesh.v1.TapService/Tap) on the users service with authentication on: a
// call made with curl reaches a tap opened with curl (how soon: `npm run bench`), with how it came (protocol,
// HTTP version, caller, sizes, trace id) and its messages, the contract's personal fields redacted
// in the raw stream; a client stream's and a server stream's first messages and their counts, also
// redacted; filters (by caller too) apply on the server; only admins may tap; and a tap whose reader never
// reads holds no call up, keeps a bounded queue and says how many calls it dropped.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import http2 from "node:http2";
import { after, before, test } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { startTelemetry } from "@shop/mesh";
import { waitFor } from "@shop/testing";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

let mesh: AuthMesh;
let admin: string;
let telemetry: { shutdown(): Promise<void> };
before(async () => {
  // OpenTelemetry's context and W3C propagation, exporting nothing: a call joins its caller's trace.
  process.env.OTEL_TRACES_EXPORTER = "none";
  telemetry = await startTelemetry({ serviceName: "tap-test", enabled: true });
  mesh = await startAuthMesh();
  admin = await mesh.token({ subject: "admin", roles: ["admin"] });
});
after(async () => {
  await mesh.stop();
  await telemetry.shutdown();
});

const tapPath = "/shop.mesh.v1.TapService/Tap";

/** A Connect streaming request's body: one enveloped JSON message. */
function enveloped(message: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

/** The JSON messages of a Connect stream's body, as far as it has come (the end message too). */
function framesOf(body: Buffer): Record<string, unknown>[] {
  const frames: Record<string, unknown>[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) break;
    frames.push(JSON.parse(body.subarray(at + 5, at + 5 + length).toString("utf8")));
    at += 5 + length;
  }
  return frames;
}

/** A tap opened with curl (Connect streaming, JSON, HTTP/1.1): its raw bytes as they come. */
function curlTap(
  token: string,
  request: unknown,
  headers: string[] = [],
): { raw: () => Buffer; process: ChildProcess } {
  const chunks: Buffer[] = [];
  const curl = spawn("curl", [
    "-sN",
    ...headers.flatMap((header) => ["-H", header]),
    "-X",
    "POST",
    `${mesh.users.server.url}${tapPath}`,
    "-H",
    "content-type: application/connect+json",
    "-H",
    `authorization: Bearer ${token}`,
    "--data-binary",
    "@-",
  ]);
  curl.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  curl.stdin.end(enveloped(request));
  return { raw: () => Buffer.concat(chunks), process: curl };
}

/** Calls a Connect method with curl (JSON over HTTP/1.1) and returns the answer's JSON. */
async function curlCall(
  path: string,
  body: unknown,
  headers: string[] = [],
  // biome-ignore lint/suspicious/noExplicitAny: the answer's JSON, read by the assertions
): Promise<Record<string, any>> {
  const curl = spawn("curl", [
    "-s",
    ...headers.flatMap((header) => ["-H", header]),
    "-X",
    "POST",
    `${mesh.users.server.url}${path}`,
    "-H",
    "content-type: application/json",
    "-H",
    `authorization: Bearer ${admin}`,
    "--data-binary",
    JSON.stringify(body),
  ]);
  const out: Buffer[] = [];
  curl.stdout.on("data", (chunk: Buffer) => out.push(chunk));
  await new Promise((resolve) => curl.on("close", resolve));
  return JSON.parse(Buffer.concat(out).toString("utf8"));
}

/** Sends the admin's token with every call. */
const asAdmin: Interceptor = (next) => (req) => {
  req.header.set("authorization", `Bearer ${admin}`);
  return next(req);
};

/** The users service over gRPC, as the admin. */
function adminUsersClient() {
  return createClient(
    UserService,
    createGrpcTransport({ baseUrl: mesh.users.server.url, interceptors: [asAdmin] }),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: a TapEvent's JSON, read by the assertions
type TapEventJson = Record<string, any>;

const eventsOf = (raw: Buffer): TapEventJson[] =>
  framesOf(raw).flatMap((frame) => (frame.events as TapEventJson[] | undefined) ?? []);

test("a call made with curl reaches a tap, with its protocol, caller, sizes and trace id, its personal fields redacted in the raw stream", async (t) => {
  const tap = curlTap(admin, { payloads: true });
  try {
    // The first (empty) response says the tap is open.
    await waitFor(() => framesOf(tap.raw()).length >= 1, { message: "the tap opened" });
    const email = `tapped-${Date.now()}@example.com`;
    const name = "Tapped Person";
    const sent = JSON.stringify({ name, email });
    // The caller's trace goes on through the call: its span carries the same trace id.
    const traceId = crypto.randomUUID().replaceAll("-", "");
    const { user } = await curlCall("/shop.user.v1.UserService/CreateUser", { name, email }, [
      `traceparent: 00-${traceId}-00f067aa0ba902b7-01`,
    ]);
    const answered = performance.now();
    const created = await waitFor(
      () =>
        eventsOf(tap.raw()).find((event) => event.method === "shop.user.v1.UserService/CreateUser"),
      { message: "CreateUser in the tap", timeoutMs: 30_000 },
    );
    // How soon is a target of `npm run bench` (the npm-start scenario), not of this test.
    t.diagnostic(
      `the call was in the tap ${Math.round(performance.now() - answered)} ms after curl returned`,
    );
    assert.equal(created.server, "users");
    assert.equal(created.protocol, "connect");
    assert.equal(created.codec, "json");
    assert.equal(created.httpVersion, "1.1");
    assert.equal(created.caller, "admin");
    assert.equal(created.code, "ok");
    assert.equal(Number(created.requestBytes), Buffer.byteLength(sent));
    assert.ok(Number(created.responseBytes) > 0);
    assert.equal(created.traceId, traceId);
    assert.deepEqual(created.requests.map(JSON.parse), [
      { name: "[redacted]", email: "[redacted]" },
    ]);
    const answer = JSON.parse(created.responses[0]);
    assert.equal(answer.user.id, user.id, "what is not personal stays");
    assert.equal(answer.user.email, "[redacted]");
    assert.equal(answer.user.name, "[redacted]");

    // Over gRPC (HTTP/2, binary): the same redaction, the token's subject never the token.
    const grpc = adminUsersClient();
    await grpc.getUser({ id: user.id });
    const got = await waitFor(
      () => eventsOf(tap.raw()).find((event) => event.method.endsWith("/GetUser")),
      { message: "GetUser in the tap" },
    );
    assert.deepEqual(
      [got.protocol, got.codec, got.httpVersion, got.caller],
      ["grpc", "proto", "2", "admin"],
    );
    assert.equal(JSON.parse(got.responses[0]).user.email, "[redacted]");

    const raw = tap.raw().toString("utf8");
    assert.ok(!raw.includes(email), "the email never leaves the process");
    assert.ok(!raw.includes(name), "nor the name");
    assert.ok(!raw.includes(admin), "nor the token");
  } finally {
    tap.process.kill();
  }
});

test("a tap shows the first 10 messages of each stream of a call, redacted, and how many there were", async () => {
  // The reader takes gzip, but a tap's batches go out uncompressed (framesOf reads them as JSON):
  // compressing them would cost the tapped process CPU its calls need.
  const tap = curlTap(admin, { payloads: true, codes: ["ok", "canceled"] }, [
    "connect-accept-encoding: gzip",
  ]);
  try {
    await waitFor(() => framesOf(tap.raw()).length >= 1, { message: "the tap opened" });
    const grpc = adminUsersClient();
    // A client stream of 12 users: the tap keeps the first 10 requests and counts all 12.
    const stamp = Date.now();
    const batch = Array.from({ length: 12 }, (_, index) => ({
      name: `Streamed Person ${index}`,
      email: `streamed-${stamp}-${index}@example.com`,
    }));
    const { users } = await grpc.batchCreateUsers(
      (async function* () {
        yield* batch;
      })(),
    );
    const created = await waitFor(
      () => eventsOf(tap.raw()).find((event) => event.method.endsWith("/BatchCreateUsers")),
      { message: "BatchCreateUsers in the tap" },
    );
    assert.equal(created.requestMessages, "12");
    assert.deepEqual(
      created.requests.map(JSON.parse),
      Array.from({ length: 10 }, () => ({ name: "[redacted]", email: "[redacted]" })),
    );
    assert.equal(created.responseMessages, "1");
    const answer = JSON.parse(created.responses[0]);
    assert.deepEqual(
      answer.users.map((user: { id: string }) => user.id),
      users.map((user) => user.id),
    );
    assert.ok(answer.users.every((user: { email: string }) => user.email === "[redacted]"));

    // A server stream read for a while, then closed: its first responses, redacted, once it ends.
    // After the first (the users so far), a new user makes sure that a change follows.
    const stop = new AbortController();
    let read = 0;
    await assert.rejects(async () => {
      for await (const _ of grpc.watchUsers({}, { signal: stop.signal })) {
        read++;
        if (read === 1) {
          await grpc.createUser({ name: "Watched Person", email: `watched-${stamp}@example.com` });
        }
        if (read === 2) stop.abort();
      }
    });
    const watched = await waitFor(
      () => eventsOf(tap.raw()).find((event) => event.method.endsWith("/WatchUsers")),
      { message: "the closed WatchUsers in the tap" },
    );
    assert.equal(watched.requestMessages, "1");
    assert.deepEqual(JSON.parse(watched.requests[0]), {});
    assert.ok(Number(watched.responseMessages) >= 2, String(watched.responseMessages));
    assert.equal(watched.responses.length, Math.min(10, Number(watched.responseMessages)));
    const changes = watched.responses.flatMap(
      (response: string) => JSON.parse(response).events ?? [],
    );
    assert.ok(changes.length > 0, JSON.stringify(watched.responses));
    for (const change of changes) {
      assert.deepEqual([change.user.name, change.user.email], ["[redacted]", "[redacted]"]);
    }

    const raw = tap.raw().toString("utf8");
    for (const user of batch) {
      assert.ok(!raw.includes(user.email), "no streamed email leaves the process");
    }
  } finally {
    tap.process.kill();
  }
});

test("a tap's filters apply on the server, and only admins may tap", async () => {
  const tap = curlTap(admin, { method: "GetUser", codes: ["not_found"] });
  try {
    await waitFor(() => framesOf(tap.raw()).length >= 1, { message: "the tap opened" });
    const missing = crypto.randomUUID();
    await curlCall("/shop.user.v1.UserService/ListUsers", {});
    await curlCall("/shop.user.v1.UserService/GetUser", { id: missing });
    const event = await waitFor(() => eventsOf(tap.raw())[0], { message: "the not_found" });
    assert.equal(event.code, "not_found");
    assert.match(event.message, /not found/);
    assert.equal(event.requests, undefined, "no payloads unless asked");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(eventsOf(tap.raw()).length, 1, "ListUsers and others filtered out");
  } finally {
    tap.process.kill();
  }

  const customer = await mesh.token({ subject: crypto.randomUUID(), roles: ["customer"] });
  const refused = curlTap(customer, {});
  await waitFor(() => framesOf(refused.raw()).some((frame) => "error" in frame), {
    message: "the customer's tap ends",
  });
  const end = framesOf(refused.raw()).find((frame) => "error" in frame) as {
    error: { code: string };
  };
  assert.equal(end.error.code, "permission_denied");
});

test("a tap filters by caller as the statistics count callers: a service by its token, or outside", async () => {
  const fromOrders = curlTap(admin, { caller: "orders" });
  const fromOutside = curlTap(admin, { caller: "outside", method: "GetUser" });
  try {
    for (const tap of [fromOrders, fromOutside]) {
      await waitFor(() => framesOf(tap.raw()).length >= 1, { message: "the tap opened" });
    }
    const grpc = adminUsersClient();
    const { user } = await grpc.createUser({
      name: "Caller Filtered",
      email: `caller-${Date.now()}@example.com`,
    });
    // From outside: the admin's own GetUser.
    await grpc.getUser({ id: user?.id ?? "" });
    // From orders: CreateOrder asks users for the customer, with the orders service's token.
    const orders = createClient(
      OrderService,
      createGrpcTransport({ baseUrl: mesh.orders.server.url, interceptors: [asAdmin] }),
    );
    await orders.createOrder({
      userId: user?.id ?? "",
      items: [{ sku: "MUG-CERAMIC", quantity: 1n }],
      requestId: crypto.randomUUID(),
    });
    const byOrders = await waitFor(() => eventsOf(fromOrders.raw())[0], {
      message: "orders' call in the tap",
    });
    assert.equal(byOrders.caller, "orders");
    const byAdmin = await waitFor(() => eventsOf(fromOutside.raw())[0], {
      message: "the admin's GetUser in the tap",
    });
    assert.equal(byAdmin.caller, "admin");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(eventsOf(fromOrders.raw()).every((event) => event.caller === "orders"));
    assert.deepEqual(
      eventsOf(fromOutside.raw()).map((event) => event.caller),
      ["admin"],
      "orders' GetUser is not from outside",
    );
  } finally {
    fromOrders.process.kill();
    fromOutside.process.kill();
  }
});

test("a tap whose reader never reads holds no call up: it keeps at most 1,000 calls and says how many it dropped", async (t) => {
  // HTTP/2 with a small window that the reader never opens again: the server's writes to the
  // tap stop after a few responses.
  const session = http2.connect(mesh.users.server.url, { settings: { initialWindowSize: 2_048 } });
  const stuck = session.request({
    ":method": "POST",
    ":path": tapPath,
    "content-type": "application/connect+json",
    authorization: `Bearer ${admin}`,
  });
  stuck.end(enveloped({ payloads: true }));
  stuck.pause();
  const received: Buffer[] = [];
  const client = adminUsersClient();
  try {
    await new Promise((resolve) => stuck.once("response", resolve));
    const calls = 3_000;
    let failed = 0;
    const started = performance.now();
    for (let i = 0; i < calls; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () =>
          client.listUsers({ pageSize: 5 }).catch((error: unknown) => {
            failed++;
            throw ConnectError.from(error);
          }),
        ),
      );
    }
    t.diagnostic(
      `${calls} calls in ${Math.round(performance.now() - started)} ms with the tap stuck`,
    );
    assert.equal(failed, 0);

    // The reader reads at last: what the tap kept, then how many it dropped.
    stuck.on("data", (chunk: Buffer) => received.push(chunk));
    stuck.resume();
    const counted = await waitFor(
      () => {
        const frames = framesOf(Buffer.concat(received));
        const events = frames.reduce(
          (n, frame) => n + ((frame.events as unknown[])?.length ?? 0),
          0,
        );
        const dropped = frames.reduce((n, frame) => n + Number(frame.dropped ?? 0), 0);
        return events + dropped >= calls && { events, dropped };
      },
      { message: "every call kept or counted", timeoutMs: 10_000 },
    );
    t.diagnostic(`the tap kept ${counted.events} calls and dropped ${counted.dropped}`);
    assert.ok(counted.dropped > 0, "it dropped what it could not keep");
    assert.ok(counted.events <= 1_000 + 200, `${counted.events} kept: about its bound at most`);
  } finally {
    stuck.close();
    session.close();
  }
  // The service answers as before.
  await assert.doesNotReject(client.listUsers({ pageSize: 1 }));
  await assert.rejects(client.getUser({ id: "not-a-uuid" }), (error: unknown) => {
    return ConnectError.from(error).code === Code.InvalidArgument;
  });
});
