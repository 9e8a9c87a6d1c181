// The runner's own logic, without a server: suites expand into the permutations the official
// runner would run (counted by hand from the suite files and the features both targets declare),
// expected responses are filled in as upstream fills them, and the checks pass what upstream passes
// and fail what it fails.
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { ClientResponseResultSchema } from "@shop/api/connectrpc/conformance/v1/client_compat_pb";
import {
  Code,
  Codec,
  HTTPVersion,
  Protocol,
  StreamType,
} from "@shop/api/connectrpc/conformance/v1/config_pb";
import {
  ConformancePayload_RequestInfoSchema,
  ConformancePayloadSchema,
  UnaryRequestSchema,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import { check } from "../src/runner/check.ts";
import { expandAll, expandSuite, loadSuites, type Permutation } from "../src/runner/suites.ts";

const suites = loadSuites();
const suite = (name: string) => {
  const found = suites.find((s) => s.name === name)?.suite;
  assert.ok(found, `suite ${name} is loaded`);
  return found;
};

test("client-mode suites are skipped and counted, server-mode suites expand", () => {
  const { permutations, clientSuites } = expandAll(suites);
  assert.equal(suites.length, 32);
  assert.equal(clientSuites.length, 16);
  assert.ok(clientSuites.every((s) => s.suite === undefined && s.caseCount > 0));
  assert.equal(permutations.length, 5086);
});

test("Basic: each stream type on every protocol, HTTP version, TLS, codec and compression it allows", () => {
  // Unary, client and server streams: Connect and gRPC-web on HTTP/1.1 and 2, gRPC on 2 only: 5
  // protocol/version pairs x TLS 2 x codecs 2 x compressions 3 = 60. Bidi streams never go over
  // HTTP/1.1: 3 pairs x 12 = 36. Basic has 2 unary, 1 client, 2 server, 2 half- and 1 full-duplex.
  const perms = expandSuite(suite("Basic"));
  assert.equal(perms.length, (2 + 1 + 2) * 60 + (2 + 1) * 36);
  const count = (streamType: StreamType, version: HTTPVersion) =>
    perms.filter((p) => p.request.streamType === streamType && p.request.httpVersion === version)
      .length;
  assert.equal(count(StreamType.FULL_DUPLEX_BIDI_STREAM, HTTPVersion.HTTP_VERSION_1), 0);
  assert.equal(count(StreamType.HALF_DUPLEX_BIDI_STREAM, HTTPVersion.HTTP_VERSION_1), 0);
  assert.equal(count(StreamType.CLIENT_STREAM, HTTPVersion.HTTP_VERSION_1), 24);
  assert.ok(
    perms.every(
      (p) =>
        p.request.protocol !== Protocol.GRPC ||
        p.request.httpVersion === HTTPVersion.HTTP_VERSION_2,
    ),
  );
  assert.ok(
    perms.some(
      (p) =>
        p.name ===
        "Basic/HTTPVersion:1/Protocol:PROTOCOL_CONNECT/Codec:CODEC_PROTO/Compression:COMPRESSION_IDENTITY/TLS:true/unary/success",
    ),
  );
});

test("relevant filters and reliesOn: names drop the fixed components, TLS-only suites have no TLS:false", () => {
  const get = expandSuite(suite("Connect with GET"));
  // Connect only, identity only, proto and JSON, HTTP/1.1 and 2, TLS and not: 8.
  assert.equal(get.length, 8);
  assert.ok(
    get.every((p) => p.request.protocol === Protocol.CONNECT && p.request.useGetHttpMethod),
  );
  assert.ok(
    get.some((p) => p.name === "Connect with GET/HTTPVersion:2/Codec:CODEC_JSON/TLS:false/success"),
  );

  const certs = expandSuite(suite("TLS Client Certs"));
  assert.ok(certs.every((p) => p.useTls && p.useTlsClientCerts && !p.name.includes("TLS:")));
  // One unary case: 5 protocol/version pairs x 2 codecs x 3 compressions.
  assert.equal(certs.length, 30);

  const size = expandSuite(suite("Server Message Size"));
  assert.ok(size.every((p) => p.request.codec === Codec.PROTO));
  assert.equal(size.length, 300);
});

test("expand directives pad a request to the server limit plus the offset, in binary size", () => {
  const perm = expandSuite(suite("Server Message Size")).find((p) =>
    p.name.endsWith("unary/request-exceeds-server-limit"),
  );
  assert.ok(perm);
  const first = perm.request.requestMessages[0];
  assert.ok(first);
  assert.equal(first.value.length, 200 * 1024 + 10);
});

function find(name: string, suffix: string): Permutation {
  const perm = expandSuite(suite(name)).find((p) => p.name.endsWith(suffix));
  assert.ok(perm, `${name} has ${suffix}`);
  return perm;
}

test("expected unary response: headers, trailers, data and what the server received", () => {
  const perm = find(
    "Basic",
    "Protocol:PROTOCOL_CONNECT/Codec:CODEC_PROTO/Compression:COMPRESSION_IDENTITY/TLS:false/unary/success",
  );
  const expected = perm.expected;
  assert.deepEqual(
    expected.responseHeaders.map((h) => [h.name, h.value]),
    [["x-custom-header", ["foo"]]],
  );
  assert.deepEqual(
    expected.responseTrailers.map((h) => [h.name, h.value]),
    [["x-custom-trailer", ["bing"]]],
  );
  assert.equal(expected.payloads.length, 1);
  const payload = expected.payloads[0];
  assert.equal(Buffer.from(payload?.data ?? []).toString(), "test response");
  assert.deepEqual(
    payload?.requestInfo?.requestHeaders.map((h) => [h.name, h.value]),
    [["X-Conformance-Test", ["Value1", "Value2"]]],
  );
  assert.equal(payload?.requestInfo?.requests.length, 1);
});

test("expected unary error: the RequestInfo travels as the error's last detail", () => {
  const perm = find("Errors", "TLS:false/unary/unauthenticated");
  const error = perm.expected.error;
  assert.equal(error?.code, Code.UNAUTHENTICATED);
  assert.equal(error?.message, "unauthenticated");
  assert.equal(perm.expected.payloads.length, 0);
  const last = error?.details.at(-1);
  assert.ok(last);
  const info = anyUnpack(last, ConformancePayload_RequestInfoSchema);
  assert.equal(info?.requests.length, 1);
});

test("expected streams: half-duplex echoes everything once, full-duplex echoes each request in turn", () => {
  const half = find("Basic", "TLS:false/bidi-stream/half-duplex/success");
  assert.equal(
    half.expected.payloads[0]?.requestInfo?.requests.length,
    half.request.requestMessages.length,
  );
  assert.equal(half.expected.payloads[1]?.requestInfo, undefined);

  const full = find("Basic", "TLS:false/bidi-stream/full-duplex/success");
  full.expected.payloads.forEach((payload, i) => {
    assert.equal(payload.requestInfo?.requests.length, 1, `payload ${i} echoes one request`);
  });
  assert.ok((full.expected.payloads[0]?.requestInfo?.requestHeaders.length ?? 0) > 0);
  assert.equal(full.expected.payloads[1]?.requestInfo?.requestHeaders.length, 0);

  const timeout = find("Deadline Propagation", "TLS:false/unary/success");
  assert.equal(timeout.expected.payloads[0]?.requestInfo?.timeoutMs, 2000n);
});

test("expected GET: the encoding and connect query parameters", () => {
  const perm = find("Connect with GET", "Codec:CODEC_JSON/TLS:false/success");
  const query = perm.expected.payloads[0]?.requestInfo?.connectGetInfo?.queryParams;
  assert.deepEqual(
    query?.map((q) => [q.name, q.value]),
    [
      ["encoding", ["json"]],
      ["connect", ["v1"]],
    ],
  );
});

test("explicit expected responses are kept, not recomputed", () => {
  const perm = find("Unexpected Requests", "TLS:false/unexpected-content-type");
  assert.equal(perm.expected.httpStatusCode, 415);
  assert.equal(perm.expected.error?.code, Code.UNKNOWN);
  assert.ok(perm.request.rawRequest);
});

test("checks: a faithful answer passes, comma-joined values count, a wrong one fails", () => {
  const perm = find(
    "Basic",
    "Protocol:PROTOCOL_CONNECT/Codec:CODEC_PROTO/Compression:COMPRESSION_IDENTITY/TLS:false/unary/success",
  );
  const faithful = create(ClientResponseResultSchema, {
    responseHeaders: [{ name: "X-Custom-Header", value: ["foo"] }],
    responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
    payloads: perm.expected.payloads,
  });
  assert.deepEqual(check(perm, faithful), []);

  const joined = find("Basic", "TLS:false/unary/success");
  const withJoinedHeaders = create(ClientResponseResultSchema, {
    responseHeaders: [{ name: "x-custom-header", value: ["foo"] }],
    responseTrailers: [{ name: "x-custom-trailer", value: ["bing"] }],
    payloads: [
      create(ConformancePayloadSchema, {
        data: joined.expected.payloads[0]?.data,
        requestInfo: {
          requestHeaders: [{ name: "x-conformance-test", value: ["Value1, Value2"] }],
          requests: joined.expected.payloads[0]?.requestInfo?.requests,
        },
      }),
    ],
  });
  assert.deepEqual(check(joined, withJoinedHeaders), []);

  const wrongData = create(ClientResponseResultSchema, {
    ...faithful,
    payloads: [
      create(ConformancePayloadSchema, { ...perm.expected.payloads[0], data: new Uint8Array([1]) }),
    ],
  });
  assert.equal(check(perm, wrongData).length, 1);

  const otherRequest = create(ClientResponseResultSchema, {
    ...faithful,
    payloads: [
      create(ConformancePayloadSchema, {
        data: perm.expected.payloads[0]?.data,
        requestInfo: create(ConformancePayload_RequestInfoSchema, {
          requestHeaders: perm.expected.payloads[0]?.requestInfo?.requestHeaders,
          requests: [
            anyPack(
              UnaryRequestSchema,
              create(UnaryRequestSchema, { requestData: new Uint8Array([7]) }),
            ),
          ],
        }),
      }),
    ],
  });
  assert.match(check(perm, otherRequest).join("\n"), /did not survive round-trip/);

  const missingTrailer = create(ClientResponseResultSchema, { ...faithful, responseTrailers: [] });
  assert.match(check(perm, missingTrailer).join("\n"), /missing "x-custom-trailer"/);
  const feedback = create(ClientResponseResultSchema, { ...faithful, feedback: ["bad wire"] });
  assert.deepEqual(check(perm, feedback), ["bad wire"]);
});

test("checks: a unary error may carry all metadata as trailers; a wrong code fails", () => {
  const perm = find("Errors", "TLS:false/unary/error-with-metadata");
  const expected = perm.expected;
  const asTrailers = create(ClientResponseResultSchema, {
    responseTrailers: [...expected.responseHeaders, ...expected.responseTrailers],
    error: expected.error,
  });
  assert.deepEqual(check(perm, asTrailers), []);
  const wrongCode = create(ClientResponseResultSchema, {
    responseTrailers: asTrailers.responseTrailers,
    error: {
      code: Code.INTERNAL,
      message: expected.error?.message,
      details: expected.error?.details,
    },
  });
  assert.match(check(perm, wrongCode).join("\n"), /does not match expected code CODE_/);
});

test("checks: over HTTP/2 a canceled stream stands for an exceeded deadline", () => {
  const perms = expandSuite(suite("Timeouts")).filter((p) => p.name.endsWith("TLS:false/unary"));
  const canceled = create(ClientResponseResultSchema, { error: { code: Code.CANCELED } });
  for (const perm of perms) {
    const errors = check(perm, canceled);
    if (perm.request.httpVersion === HTTPVersion.HTTP_VERSION_2) assert.deepEqual(errors, []);
    else assert.equal(errors.length, 1);
  }
});
