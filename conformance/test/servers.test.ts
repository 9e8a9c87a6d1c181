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
  type BidiStreamRequest,
  BidiStreamRequestSchema,
  type BidiStreamResponse,
  ClientStreamRequestSchema,
  ConformancePayload_RequestInfoSchema,
  ConformanceService,
  UnaryRequestSchema,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import { createRequestStream } from "@shop/testing";
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

    // Streams over HTTP/2: gRPC with protobuf (the runtime's own gRPC path serves server streams)
    // and Connect with JSON (connect-es serves them).
    const streamWays = [
      ["grpc", true],
      ["connect", false],
    ] as const;
    for (const [protocol, binary] of streamWays) {
      const clientOf = () =>
        createClient(
          ConformanceService,
          transportFor(target, protocol, { tls: false, httpVersion: "2" }, binary),
        );

      test(`ServerStream (${protocol}): the data in order, the request info in the first only, then the error`, async () => {
        let trailers = new Headers();
        const received: Uint8Array[] = [];
        let infos = 0;
        const stream = clientOf().serverStream(
          {
            responseDefinition: {
              responseTrailers: [{ name: "x-custom-trailer", value: ["end"] }],
              responseData: [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])],
              responseDelayMs: 5,
              error: { code: ConformanceCode.ABORTED, message: "after three" },
            },
          },
          { onTrailer: (t) => (trailers = t) },
        );
        const error = await (async () => {
          for await (const response of stream) {
            received.push(response.payload?.data ?? new Uint8Array());
            if (response.payload?.requestInfo) infos++;
          }
        })().then(
          () => assert.fail("expected the defined error"),
          (reason: unknown) => ConnectError.from(reason),
        );
        assert.deepEqual(received, [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
        assert.equal(infos, 1);
        assert.equal(error.code, Code.Aborted);
        assert.equal(error.findDetails(ConformancePayload_RequestInfoSchema).length, 0);
        assert.equal(
          trailers.get("x-custom-trailer") ?? error.metadata.get("x-custom-trailer"),
          "end",
        );
      });

      test(`ServerStream (${protocol}): an error before any data carries the request info`, async () => {
        const stream = clientOf().serverStream({
          responseDefinition: { error: { code: ConformanceCode.NOT_FOUND, message: "none" } },
        });
        const error = await (async () => {
          for await (const _ of stream) assert.fail("expected no message");
        })().then(
          () => assert.fail("expected the defined error"),
          (reason: unknown) => ConnectError.from(reason),
        );
        assert.equal(error.code, Code.NotFound);
        assert.equal(
          error.findDetails(ConformancePayload_RequestInfoSchema)[0]?.requests.length,
          1,
        );
      });

      test(`ClientStream (${protocol}): every request echoed, the first one's definition answered`, async () => {
        const response = await clientOf().clientStream(
          (async function* () {
            yield create(ClientStreamRequestSchema, {
              responseDefinition: {
                response: { case: "responseData", value: new Uint8Array([7]) },
              },
            });
            yield create(ClientStreamRequestSchema, { requestData: new Uint8Array([1]) });
            yield create(ClientStreamRequestSchema, { requestData: new Uint8Array([2]) });
          })(),
        );
        assert.deepEqual(response.payload?.data, new Uint8Array([7]));
        assert.equal(response.payload?.requestInfo?.requests.length, 3);
      });

      test(`BidiStream (${protocol}): full duplex answers each request as it comes`, async () => {
        const requests = createRequestStream<BidiStreamRequest>();
        const responses = clientOf().bidiStream(requests)[Symbol.asyncIterator]();
        const next = async (): Promise<BidiStreamResponse> => {
          const result = await responses.next();
          assert.ok(!result.done, "expected a response");
          return result.value;
        };
        requests.push(
          create(BidiStreamRequestSchema, {
            fullDuplex: true,
            responseDefinition: {
              responseData: [new Uint8Array([1]), new Uint8Array([2])],
              error: { code: ConformanceCode.DATA_LOSS, message: "done" },
            },
          }),
        );
        const first = await next();
        assert.deepEqual(first.payload?.data, new Uint8Array([1]));
        assert.equal(first.payload?.requestInfo?.requests.length, 1);
        assert.ok((first.payload?.requestInfo?.requestHeaders.length ?? 0) > 0);
        // The second answer exists only once the second request has been sent.
        requests.push(create(BidiStreamRequestSchema, { requestData: new Uint8Array([9]) }));
        const second = await next();
        assert.deepEqual(second.payload?.data, new Uint8Array([2]));
        assert.equal(second.payload?.requestInfo?.requests.length, 1);
        assert.equal(second.payload?.requestInfo?.requestHeaders.length, 0);
        requests.push(create(BidiStreamRequestSchema, {}));
        await assert.rejects(responses.next(), (error) => {
          assert.equal(ConnectError.from(error).code, Code.DataLoss);
          return true;
        });
        requests.close();
      });

      test(`BidiStream (${protocol}): half duplex answers once the client has sent everything`, async () => {
        const requests = (async function* () {
          yield create(BidiStreamRequestSchema, {
            responseDefinition: { responseData: [new Uint8Array([1]), new Uint8Array([2])] },
          });
          yield create(BidiStreamRequestSchema, { requestData: new Uint8Array([5]) });
        })();
        const responses: BidiStreamResponse[] = [];
        for await (const response of clientOf().bidiStream(requests)) responses.push(response);
        assert.equal(responses.length, 2);
        assert.equal(responses[0]?.payload?.requestInfo?.requests.length, 2);
        assert.equal(responses[1]?.payload?.requestInfo, undefined);
      });

      test(`Unary (${protocol}): a response delay past the deadline ends in deadline_exceeded`, async () => {
        const started = Date.now();
        await assert.rejects(
          clientOf().unary({ responseDefinition: { responseDelayMs: 2_000 } }, { timeoutMs: 200 }),
          (error) => {
            assert.equal(ConnectError.from(error).code, Code.DeadlineExceeded);
            return true;
          },
        );
        assert.ok(Date.now() - started < 1_500, "the deadline ended the call");
      });
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
