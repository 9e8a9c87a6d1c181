// Both conformance targets answer as the suites expect on every protocol and HTTP version they
// serve, cleartext and TLS, before the runner judges them: a Unary with response headers,
// trailers and data echoes what it received, and a defined error arrives with its details.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Code as ConformanceCode } from "@shop/api/connectrpc/conformance/v1/config_pb";
import {
  ConformancePayload_RequestInfoSchema,
  ConformanceService,
  UnaryRequestSchema,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import { conformanceRegistry } from "../src/conformance-service.ts";
import { startControlServer } from "../src/control-server.ts";
import { startServerUnderTest } from "../src/server-under-test.ts";
import type { ConformanceTarget, StartTarget } from "../src/target.ts";
import { createTlsMaterial, type TlsMaterial } from "../src/tls-material.ts";

const targets: [string, StartTarget][] = [
  ["connect-node control", startControlServer],
  ["mesh runtime", startServerUnderTest],
];

const protocols = {
  connect: createConnectTransport,
  grpc: createGrpcTransport,
  "grpc-web": createGrpcWebTransport,
} as const;

type Way = { tls: boolean; httpVersion: "1.1" | "2" };
const ways: Way[] = [
  { tls: false, httpVersion: "1.1" },
  { tls: false, httpVersion: "2" },
  { tls: true, httpVersion: "1.1" },
  { tls: true, httpVersion: "2" },
];

function transportFor(
  target: ConformanceTarget,
  protocol: keyof typeof protocols,
  way: Way,
  useBinaryFormat: boolean,
  clientCert?: TlsMaterial["client"],
): Transport {
  const baseUrl = way.tls ? target.tlsUrl : target.cleartextUrl;
  assert.ok(baseUrl, "the target serves this transport");
  const common = {
    baseUrl,
    useBinaryFormat,
    jsonOptions: { registry: conformanceRegistry },
    nodeOptions: way.tls
      ? { ca: target.caCertPem, cert: clientCert?.certPem, key: clientCert?.keyPem }
      : undefined,
  };
  const create = protocols[protocol];
  return way.httpVersion === "2"
    ? create({ ...common, httpVersion: "2" })
    : create({ ...common, httpVersion: "1.1" });
}

const unaryRequest = create(UnaryRequestSchema, {
  responseDefinition: {
    responseHeaders: [{ name: "x-custom-header", value: ["foo", "bar"] }],
    responseTrailers: [{ name: "x-custom-trailer", value: ["baz"] }],
    response: { case: "responseData", value: new Uint8Array([1, 2, 3]) },
  },
  requestData: new Uint8Array([9]),
});

for (const [name, start] of targets) {
  describe(name, () => {
    let target: ConformanceTarget;
    let clientPki: TlsMaterial;
    before(async () => {
      clientPki = await createTlsMaterial();
      target = await start({ tls: true });
    });
    after(() => target.close());

    for (const protocol of Object.keys(protocols) as (keyof typeof protocols)[]) {
      for (const way of ways) {
        const label = `${protocol} over HTTP/${way.httpVersion}${way.tls ? " with TLS" : ""}`;
        test(`Unary: ${label} sends back headers, trailers, data and what it received`, async () => {
          const client = createClient(
            ConformanceService,
            transportFor(target, protocol, way, protocol !== "connect"),
          );
          let headers = new Headers();
          let trailers = new Headers();
          const response = await client.unary(unaryRequest, {
            headers: { "x-test-case": label },
            timeoutMs: 10_000,
            onHeader: (received) => {
              headers = received;
            },
            onTrailer: (received) => {
              trailers = received;
            },
          });
          assert.equal(headers.get("x-custom-header"), "foo, bar");
          assert.equal(trailers.get("x-custom-trailer"), "baz");
          assert.deepEqual(response.payload?.data, new Uint8Array([1, 2, 3]));
          const info = response.payload?.requestInfo;
          const echoed = info?.requestHeaders.find((header) => header.name === "x-test-case");
          assert.deepEqual(echoed?.value, [label]);
          const timeoutMs = Number(info?.timeoutMs);
          assert.ok(timeoutMs > 5_000 && timeoutMs <= 10_000, `timeout seen: ${timeoutMs}`);
          assert.equal(info?.requests.length, 1);
          const request = info?.requests[0] && anyUnpack(info.requests[0], UnaryRequestSchema);
          assert.deepEqual(request?.requestData, new Uint8Array([9]));
        });
      }
    }

    test("a defined error arrives with its code, message and the request info as a detail", async () => {
      const client = createClient(
        ConformanceService,
        transportFor(target, "grpc", { tls: false, httpVersion: "2" }, true),
      );
      const error = await client
        .unary({
          responseDefinition: {
            response: {
              case: "error",
              value: { code: ConformanceCode.RESOURCE_EXHAUSTED, message: "full" },
            },
          },
        })
        .then(
          () => assert.fail("expected an error"),
          (reason: unknown) => ConnectError.from(reason),
        );
      assert.equal(error.code, Code.ResourceExhausted);
      assert.equal(error.rawMessage, "full");
      const [info] = error.findDetails(ConformancePayload_RequestInfoSchema);
      assert.equal(info?.requests.length, 1);
    });

    test("a Connect GET is echoed with its query parameters", async () => {
      const transport = createConnectTransport({
        baseUrl: target.cleartextUrl,
        httpVersion: "1.1",
        useHttpGet: true,
        jsonOptions: { registry: conformanceRegistry },
      });
      const client = createClient(ConformanceService, transport);
      const response = await client.idempotentUnary({});
      const params = response.payload?.requestInfo?.connectGetInfo?.queryParams ?? [];
      const connect = params.find((param) => param.name === "connect");
      assert.deepEqual(connect?.value, ["v1"]);
      assert.ok(params.some((param) => param.name === "message"));
    });

    test("with client certificates asked for, a client without one is refused", async () => {
      const verifying = await start({ tls: true, clientCaCertPem: clientPki.caCertPem });
      try {
        assert.equal(verifying.verifiesClientCerts, true);
        const way: Way = { tls: true, httpVersion: "2" };
        const trusted = createClient(
          ConformanceService,
          transportFor(verifying, "grpc", way, true, clientPki.client),
        );
        const response = await trusted.unary(unaryRequest);
        assert.deepEqual(response.payload?.data, new Uint8Array([1, 2, 3]));
        const anonymous = createClient(
          ConformanceService,
          transportFor(verifying, "grpc", way, true),
        );
        await assert.rejects(anonymous.unary(unaryRequest));
      } finally {
        await verifying.close();
      }
    });

    test("a request larger than messageReceiveLimit is refused with resource_exhausted", async () => {
      const limited = await start({ tls: false, messageReceiveLimit: 1024 });
      try {
        assert.equal(limited.maxReceiveBytes, 1024);
        const client = createClient(
          ConformanceService,
          transportFor(limited, "connect", { tls: false, httpVersion: "1.1" }, true),
        );
        await client.unary({ requestData: new Uint8Array(512) });
        await assert.rejects(client.unary({ requestData: new Uint8Array(2048) }), (error) => {
          assert.equal(ConnectError.from(error).code, Code.ResourceExhausted);
          return true;
        });
      } finally {
        await limited.close();
      }
    });
  });
}
