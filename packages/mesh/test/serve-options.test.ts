// Two options of serve() that the conformance suites needed: TLS that requires client certificates
// signed by a given authority (tls.clientCaFile), and the JSON codec's options (jsonOptions).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "@shop/api/grpc/health/v1/health_pb";
import { pino } from "pino";
import { createTlsMaterial, type TlsMaterial } from "../../../conformance/src/tls-material.ts";
import {
  defaultLimits,
  type ServeOptions,
  type Server,
  ServingStatus,
  serve,
} from "../src/index.ts";

const baseOptions: ServeOptions = {
  name: "serve-options-test",
  services: [],
  routes: () => {},
  port: 0,
  host: "127.0.0.1",
  limits: defaultLimits,
  corsOrigins: [],
  logger: pino({ level: "silent" }),
  readiness: async () => ({}),
};

describe("tls.clientCaFile", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "mesh-client-certs-"));
  let material: TlsMaterial;
  let server: Server;
  before(async () => {
    material = await createTlsMaterial();
    const file = (name: string, pem: string) => {
      writeFileSync(path.join(dir, name), pem);
      return path.join(dir, name);
    };
    server = await serve({
      ...baseOptions,
      tls: {
        certFile: file("cert.pem", material.server.certPem),
        keyFile: file("key.pem", material.server.keyPem),
        clientCaFile: file("ca.pem", material.caCertPem),
      },
    });
    server.health.setAll(ServingStatus.SERVING);
  });
  after(async () => {
    await server.close(100);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const httpVersion of ["1.1", "2"] as const) {
    test(`over HTTP/${httpVersion}, a client with a certificate the authority signed is served`, async () => {
      const transport = createConnectTransport({
        baseUrl: `https://127.0.0.1:${server.port}`,
        httpVersion,
        nodeOptions: {
          ca: material.caCertPem,
          cert: material.client.certPem,
          key: material.client.keyPem,
        },
      });
      const health = createClient(Health, transport);
      assert.equal((await health.check({})).status, Status.SERVING);
    });

    test(`over HTTP/${httpVersion}, a client without a certificate is refused`, async () => {
      const transport = createConnectTransport({
        baseUrl: `https://127.0.0.1:${server.port}`,
        httpVersion,
        nodeOptions: { ca: material.caCertPem },
      });
      await assert.rejects(createClient(Health, transport).check({}));
    });
  }

  test("cleartext on the same port is served as before", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    assert.equal((await health.check({})).status, Status.SERVING);
  });
});

describe("jsonOptions", () => {
  let server: Server;
  before(async () => {
    server = await serve({ ...baseOptions, jsonOptions: { enumAsInteger: true } });
    server.health.setAll(ServingStatus.SERVING);
  });
  after(() => server.close(100));

  test("Connect's JSON codec writes with the options given", async () => {
    const response = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.deepEqual(await response.json(), { status: Status.SERVING });
  });
});
