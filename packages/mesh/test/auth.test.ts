// The runtime's side of authentication: the declared access policy covers every method of the
// shop, a server refuses to start with a method no rule covers, `/metrics` can be closed, and the
// configuration refuses what would be unsafe.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Health } from "@shop/api/grpc/health/v1/health_pb";
import { InventoryService } from "@shop/api/shop/inventory/v1/inventory_service_pb";
import { StatsService } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createSigner,
  ensureLocalKeys,
  jwksFile,
  localIssuer,
  privateKeyFile,
  readPrivateKey,
} from "@shop/auth";
import { createTestDatabase, startTestService } from "@shop/testing";
import { methodsWithoutRule, serverEnvSchema, toServerConfig } from "../src/index.ts";
import { probeService } from "./probe-service.ts";

const keyDir = mkdtempSync(path.join(tmpdir(), "mesh-auth-"));
after(() => rmSync(keyDir, { recursive: true, force: true }));
const open = new Set(["grpc.health.v1.Health"]);

test("every method of the shop's services has a declared access rule", () => {
  assert.deepEqual(
    methodsWithoutRule([UserService, InventoryService, OrderService, StatsService], open),
    [],
  );
  assert.deepEqual(methodsWithoutRule([Health], new Set()), [
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.health.v1.Health/List",
  ]);
});

test("a server with authentication on refuses to start when a method has no rule", async () => {
  await ensureLocalKeys(keyDir, ["sign-in"]);
  const database = await createTestDatabase();
  try {
    await assert.rejects(
      startTestService({ ...probeService, services: [Health] }, database.url, {
        AUTH: "on",
        AUTH_ISSUER: localIssuer,
        AUTH_JWKS_FILE: jwksFile(keyDir),
        AUTH_OPEN: "grpc.reflection.v1.ServerReflection",
      }),
      /no access rule \(shop\.mesh\.v1\.access\) for grpc\.health\.v1\.Health\/Check/,
    );
  } finally {
    await database.drop();
  }
});

test("/metrics needs a token once it is not listed in AUTH_OPEN", async () => {
  await ensureLocalKeys(keyDir, ["sign-in"]);
  const database = await createTestDatabase();
  const service = await startTestService(probeService, database.url, {
    AUTH: "on",
    AUTH_ISSUER: localIssuer,
    AUTH_JWKS_FILE: jwksFile(keyDir),
    AUTH_OPEN: "grpc.health.v1.Health",
  });
  try {
    const url = `${service.server.url}/metrics`;
    const anonymous = await fetch(url);
    assert.equal(anonymous.status, 401);
    assert.match(await anonymous.text(), /missing bearer token/);
    const signer = await createSigner({
      privateKey: readPrivateKey(privateKeyFile(keyDir, "sign-in")),
      issuer: localIssuer,
      audience: "shop",
    });
    const token = await signer.sign({ subject: "prometheus", roles: [] }, 60);
    const signedIn = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(signedIn.status, 200);
    assert.match(await signedIn.text(), /rpc_server_requests_total|process_cpu/);
  } finally {
    await service.stop(100);
    await database.drop();
  }
});

test("the configuration refuses authentication without keys, and a wildcard CORS origin", () => {
  const config = (env: Record<string, string>) => toServerConfig(serverEnvSchema.parse(env), 0);
  assert.throws(() => config({}), /authentication is on: set AUTH_ISSUER and AUTH_JWKS_URL/);
  assert.throws(() => config({ AUTH: "on", AUTH_JWKS_FILE: "/keys.json" }), /AUTH_ISSUER/);
  assert.equal(config({ AUTH: "off" }).auth, undefined);
  const on = config({
    AUTH_ISSUER: "https://id.example",
    AUTH_JWKS_URL: "https://id.example/jwks",
  });
  assert.deepEqual(on.auth?.algorithms, ["ES256"]);
  assert.ok(on.auth?.open.includes("grpc.health.v1.Health"));
  assert.throws(() => config({ AUTH: "off", CORS_ORIGINS: "*" }), /wildcard/);
});
