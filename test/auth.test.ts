// Authentication and authorization across the three services, each over Connect (JSON and
// binary), gRPC and gRPC-web: every kind of bad token is refused with `unauthenticated` before any
// handler runs; the declared access rules decide who may call what; a token that expires ends the
// watch it opened; the services reach each other with their own identity.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, test } from "node:test";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { defaultAudience, localIssuer, privateKeyFile, readPrivateKey } from "@shop/auth";
import { expectCode, protocols, readMetric, recordStream, waitFor } from "@shop/testing";
import { importJWK, SignJWT } from "jose";
import { type AuthMesh, startAuthMesh } from "./support/auth-mesh.ts";

let mesh: AuthMesh;
before(async () => {
  mesh = await startAuthMesh();
});
after(() => mesh.stop());

// Bidirectional streams need HTTP/2: over HTTP/1.1 (Connect JSON and gRPC-web here) they are
// refused before authentication by the protocol itself, so they are called over the others only.
const transports: { name: string; http2: boolean; make(baseUrl: string): Transport }[] = [
  ...protocols.map((protocol) => ({
    name: protocol.name,
    http2: protocol.name === "grpc",
    make: protocol.transport,
  })),
  {
    name: "connect-binary over HTTP/2",
    http2: true,
    make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  },
];

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** Signs `payload` with the trusted sign-in key but lets the test choose every claim. */
async function signWithTrustedKey(payload: Record<string, unknown>): Promise<string> {
  const jwk = readPrivateKey(privateKeyFile(mesh.keyDir, "sign-in"));
  return new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", kid: jwk.kid })
    .sign(await importJWK(jwk, "ES256"));
}

const goodClaims = () => ({
  iss: localIssuer,
  aud: defaultAudience,
  sub: "admin",
  roles: ["admin"],
  iat: now(),
  nbf: now(),
  exp: now() + 300,
});

/** Every kind of bad Authorization header, by name. */
async function badAuthorizations(): Promise<Record<string, string | undefined>> {
  const trustedJwk = readPrivateKey(privateKeyFile(mesh.keyDir, "sign-in"));
  const { d: _private, ...publicJwk } = trustedJwk;
  // A key nobody trusts, under the trusted key's id.
  const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const strangerSigned = await new SignJWT(goodClaims())
    .setProtectedHeader({ alg: "ES256", kid: trustedJwk.kid })
    .sign(stranger.privateKey);
  // An RSA key nobody trusts.
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaSigned = await new SignJWT(goodClaims())
    .setProtectedHeader({ alg: "RS256", kid: trustedJwk.kid })
    .sign(rsa.privateKey);
  // Algorithm confusion: HMAC keyed with the trusted public key, as if it were a shared secret.
  const confused = await new SignJWT(goodClaims())
    .setProtectedHeader({ alg: "HS256", kid: trustedJwk.kid })
    .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
  const valid = await signWithTrustedKey(goodClaims());
  const [header, payload] = valid.split(".");
  const long = await signWithTrustedKey({ ...goodClaims(), pad: "x".repeat(47_000) });
  assert.ok(long.length > 62_000, `the long token has ${long.length} bytes`);
  return {
    missing: undefined,
    empty: "",
    "not bearer": `Basic ${Buffer.from("admin:admin").toString("base64")}`,
    "bearer without a token": "Bearer ",
    garbage: "Bearer not.a.jwt",
    expired: `Bearer ${await signWithTrustedKey({ ...goodClaims(), iat: now() - 600, exp: now() - 300 })}`,
    "not yet valid": `Bearer ${await signWithTrustedKey({ ...goodClaims(), nbf: now() + 300 })}`,
    "no expiry": `Bearer ${await signWithTrustedKey({ ...goodClaims(), exp: undefined })}`,
    "signed by an unknown key": `Bearer ${strangerSigned}`,
    "signed with RS256 by an unknown key": `Bearer ${rsaSigned}`,
    "alg none": `Bearer ${base64url({ alg: "none", typ: "JWT" })}.${base64url(goodClaims())}.`,
    "HS256 keyed with the public key": `Bearer ${confused}`,
    "tampered payload": `Bearer ${header}.${base64url({ ...goodClaims(), roles: ["admin", "service"] })}.${valid.split(".")[2]}`,
    "payload of another token": `Bearer ${header}.${payload}x.${valid.split(".")[2]}`,
    "wrong issuer": `Bearer ${await signWithTrustedKey({ ...goodClaims(), iss: "https://evil.example" })}`,
    "wrong audience": `Bearer ${await signWithTrustedKey({ ...goodClaims(), aud: "another-api" })}`,
    // As long as an HTTP/2 client sends by default (Node's maxSendHeaderBlockLength is 64 KiB).
    "64 KB long": `Bearer ${long}`,
  };
}

/** Calls `method` once with `header` and returns how it ended. */
async function callOnce(
  transport: Transport,
  service: DescService,
  method: DescMethod,
  header: Record<string, string>,
): Promise<ConnectError | "ok"> {
  const client = createClient(service, transport) as unknown as Record<
    string,
    (input: unknown, options: unknown) => unknown
  >;
  const call = client[method.localName];
  assert.ok(call, method.name);
  const signal = AbortSignal.timeout(5_000);
  const options = { headers: header, signal };
  const requests = async function* () {
    yield {};
  };
  try {
    switch (method.methodKind) {
      case "unary":
        await call({}, options);
        break;
      case "client_streaming":
        await call(requests(), options);
        break;
      case "server_streaming":
        for await (const _ of call({}, options) as AsyncIterable<unknown>) break;
        break;
      case "bidi_streaming":
        for await (const _ of call(requests(), options) as AsyncIterable<unknown>) break;
        break;
    }
    return "ok";
  } catch (error) {
    return ConnectError.from(error);
  }
}

const services = () => [
  { service: UserService, url: mesh.users.server.url },
  { service: InventoryService, url: mesh.inventory.server.url },
  { service: OrderService, url: mesh.orders.server.url },
];

test("every bad token, on every method of every service over every protocol, is unauthenticated and runs no handler", async () => {
  const bad = await badAuthorizations();
  mesh.handlerCalls.length = 0;
  let calls = 0;
  for (const { name: protocol, http2, make } of transports) {
    for (const { service, url } of services()) {
      const transport = make(url);
      for (const method of service.methods) {
        if (method.methodKind === "bidi_streaming" && !http2) continue;
        for (const [kind, authorization] of Object.entries(bad)) {
          const header: Record<string, string> =
            authorization === undefined ? {} : { authorization };
          const outcome = await callOnce(transport, service, method, header);
          const where = `${kind} → ${service.typeName}/${method.name} over ${protocol}`;
          assert.ok(outcome !== "ok", `${where} succeeded`);
          assert.equal(Code[outcome.code], "Unauthenticated", `${where}: ${outcome.rawMessage}`);
          assert.doesNotMatch(outcome.rawMessage, /eyJ|\/work\/|node_modules|at \w+ \(/);
          calls++;
        }
      }
    }
  }
  assert.ok(calls >= (4 * 18 - 2) * 17, `${calls} calls`);
  assert.deepEqual(mesh.handlerCalls, [], "no handler ran");
});

test("a call without a valid token is refused before its body is read, and counted", async () => {
  const before = await readMetric(mesh.users.server.url, "rpc_server_refused_total", {
    code: "unauthenticated",
  });
  const url = `${mesh.users.server.url}/shop.user.v1.UserService/CreateUser`;
  // A body that does not parse would be invalid_argument if it were read first.
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{not json",
  });
  assert.equal(response.status, 401);
  assert.equal(((await response.json()) as { code: string }).code, "unauthenticated");
  const after = await readMetric(mesh.users.server.url, "rpc_server_refused_total", {
    code: "unauthenticated",
  });
  assert.equal(after - before, 1);
});

test("a valid token reaches the handlers over every protocol", async () => {
  const token = await mesh.token({ subject: "admin", roles: ["admin"] });
  for (const { name, make } of transports) {
    mesh.handlerCalls.length = 0;
    const outcome = await callOnce(
      make(mesh.inventory.server.url),
      InventoryService,
      InventoryService.method.listProducts,
      { authorization: `Bearer ${token}` },
    );
    assert.equal(outcome, "ok", `${name}: ${outcome === "ok" ? "" : outcome.rawMessage}`);
    assert.deepEqual(mesh.handlerCalls, ["shop.inventory.v1.InventoryService/listProducts"]);
  }
});

test("the declared rules decide who may call what: writes need their role, services' own methods need a service", async () => {
  const customer = await mesh.token({ subject: crypto.randomUUID(), roles: ["customer"] });
  const roleless = await mesh.token({ subject: "someone", roles: [] });
  const asCustomer = { headers: { authorization: `Bearer ${customer}` } };
  const users = createClient(
    UserService,
    protocols[0]?.transport(mesh.users.server.url) as Transport,
  );
  const inventory = createClient(
    InventoryService,
    protocols[1]?.transport(mesh.inventory.server.url) as Transport,
  );
  mesh.handlerCalls.length = 0;
  const denied = await expectCode(
    users.createUser({ name: "Eve", email: "eve@example.com" }, asCustomer),
    Code.PermissionDenied,
  );
  assert.match(denied.rawMessage, /CreateUser needs the role admin/);
  await expectCode(
    inventory.reserveStock({ orderId: crypto.randomUUID(), items: [] }, asCustomer),
    Code.PermissionDenied,
  );
  await expectCode(
    inventory.adjustStock({ sku: "MUG-CERAMIC", delta: 100n }, asCustomer),
    Code.PermissionDenied,
  );
  assert.deepEqual(mesh.handlerCalls, [], "no handler ran for a call the rules refuse");
  // Reading needs only a signed-in caller.
  const listed = await users.listUsers({}, { headers: { authorization: `Bearer ${roleless}` } });
  assert.ok(listed.revision >= 0n);
});

test("a token that expires during a watch ends it with unauthenticated, on every protocol", async () => {
  for (const { name, make } of transports) {
    const token = await mesh.token({ subject: "admin", roles: ["admin"] }, 2);
    const client = createClient(UserService, make(mesh.users.server.url));
    const watch = recordStream(
      client.watchUsers({}, { headers: { authorization: `Bearer ${token}` } }),
    );
    await waitFor(() => watch.messages.length > 0, { message: `${name}: first response` });
    await watch.ended;
    const error = watch.error;
    assert.ok(error instanceof ConnectError, `${name}: the watch ended with ${String(error)}`);
    assert.equal(Code[error.code], "Unauthenticated", `${name}: ${error.rawMessage}`);
    assert.match(error.rawMessage, /token expired/);
  }
  // The handlers behind the ended watches stopped too.
  await waitFor(
    async () => (await readMetric(mesh.users.server.url, "change_feed_active_watches")) === 0,
    { message: "the expired watches' handlers ended" },
  );
});

test("health and reflection stay open; /metrics too by default", async () => {
  const health = await fetch(`${mesh.users.server.url}/grpc.health.v1.Health/Check`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(health.status, 200);
  const metrics = await fetch(`${mesh.users.server.url}/metrics`);
  assert.equal(metrics.status, 200);
});
