// The mesh runtime's server, running a service with no RPCs of its own over a real PostgreSQL:
// one port for HTTP/1.1 and h2c, CORS, message limits, health and the HTTP endpoints.
import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect as connectTcp } from "node:net";
import { after, before, describe, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "@shop/api/grpc/health/v1/health_pb";
import { ServerReflection } from "@shop/api/grpc/reflection/v1/reflection_pb";
import {
  createTestDatabase,
  expectCode,
  readMetric,
  startTestService,
  type TestDatabase,
  waitFor,
} from "@shop/testing";
import type { RunningService } from "../src/index.ts";
import { probeService } from "./probe-service.ts";

const dashboard = "https://dashboard.example";

let database: TestDatabase;
let service: RunningService;
let baseUrl: string;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(probeService, database.url, { CORS_ORIGINS: dashboard });
  baseUrl = service.server.url;
  const health = createClient(Health, createGrpcTransport({ baseUrl }));
  await waitFor(async () => (await health.check({})).status === Status.SERVING, {
    message: "the probe never became SERVING",
  });
});
after(async () => {
  await service.stop(100);
  await database.drop();
});

const transports: [string, (baseUrl: string) => Transport][] = [
  ["connect over HTTP/1.1", (url) => createConnectTransport({ baseUrl: url, httpVersion: "1.1" })],
  ["connect over h2c", (url) => createConnectTransport({ baseUrl: url, httpVersion: "2" })],
  ["grpc over h2c", (url) => createGrpcTransport({ baseUrl: url })],
  ["grpc-web over HTTP/1.1", (url) => createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" })],
];

describe("one cleartext port, HTTP/1.1 and h2c", () => {
  test("node:http gets an HTTP/1.1 answer", async () => {
    const { version, status, body } = await new Promise<{
      version: string;
      status: number;
      body: string;
    }>((resolve, reject) => {
      http
        .get(`${baseUrl}/healthz`, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
          });
          res.on("end", () =>
            resolve({ version: res.httpVersion, status: res.statusCode ?? 0, body }),
          );
        })
        .on("error", reject);
    });
    assert.equal(version, "1.1");
    assert.equal(status, 200);
    assert.equal((JSON.parse(body) as { status: string }).status, "alive");
  });

  test("fetch gets an HTTP/1.1 answer", async () => {
    const response = await fetch(`${baseUrl}/healthz`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("node:http2 with prior knowledge gets HTTP/2 answers, several streams on one connection", async () => {
    const session = http2.connect(baseUrl);
    try {
      const get = (path: string) =>
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ":method": "GET", ":path": path });
          stream.on("response", (headers) => resolve(Number(headers[":status"])));
          stream.on("error", reject);
          stream.resume();
        });
      const statuses = await Promise.all(["/healthz", "/readyz", "/metrics", "/healthz"].map(get));
      assert.deepEqual(statuses, [200, 200, 200, 200]);
      assert.equal(session.alpnProtocol, "h2c");
    } finally {
      session.close();
    }
  });

  for (const [name, transportOf] of transports) {
    test(`grpc.health.v1.Health/Check answers ${name}`, async () => {
      const health = createClient(Health, transportOf(baseUrl));
      assert.equal((await health.check({})).status, Status.SERVING);
      await expectCode(health.check({ service: "no.such.Service" }), Code.NotFound);
    });
  }

  test("bytes that are not HTTP close that connection and nothing else", async () => {
    for (const garbage of [
      "\x00\x01\x02 not http at all\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\ngarbage",
    ]) {
      await new Promise<void>((resolve) => {
        const socket = connectTcp(service.server.port, "127.0.0.1", () => socket.end(garbage));
        socket.on("error", () => {});
        socket.on("close", () => resolve());
        socket.resume();
      });
    }
    const response = await fetch(`${baseUrl}/healthz`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("a path that is neither an RPC nor an endpoint is 404", async () => {
    const response = await fetch(`${baseUrl}/no/such/path`);
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });

  test("/readyz is 200 with the database reachable and the migrations applied", async () => {
    const response = await fetch(`${baseUrl}/readyz`);
    assert.equal(response.status, 200);
    assert.deepEqual(((await response.json()) as { checks: unknown }).checks, {
      database: true,
      migrations: true,
    });
  });
});

describe("CORS", () => {
  const preflight = (origin: string) =>
    fetch(`${baseUrl}/grpc.health.v1.Health/Check`, {
      method: "OPTIONS",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version",
      },
    });

  test("a preflight from an allowed origin is answered with that origin", async () => {
    const response = await preflight(dashboard);
    await response.body?.cancel();
    assert.ok(response.status >= 200 && response.status < 300, `status ${response.status}`);
    assert.equal(response.headers.get("access-control-allow-origin"), dashboard);
    const methods = (response.headers.get("access-control-allow-methods") ?? "").toUpperCase();
    assert.match(methods, /\bPOST\b/);
    assert.match(methods, /\bGET\b/);
    const headers = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    assert.match(headers, /\bcontent-type\b/);
    assert.match(headers, /\bconnect-protocol-version\b/);
  });

  test("an RPC from an allowed origin exposes the headers a browser client needs", async () => {
    const response = await fetch(`${baseUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { origin: dashboard, "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(response.headers.get("access-control-allow-origin"), dashboard);
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    assert.match(exposed, /\bgrpc-status\b/);
    assert.match(exposed, /\bgrpc-message\b/);
  });

  // The same, and the actual request, over both HTTP versions, from many refused origins.
  const rpcPath = "/grpc.health.v1.Health/Check";
  const refused = [
    "https://evil.example",
    `${dashboard}.evil.example`,
    "https://evil.example/https://dashboard.example",
    "http://dashboard.example",
    "https://dashboard.example:8443",
    "HTTPS://DASHBOARD.EXAMPLE",
    `${dashboard}/`,
    `${dashboard}, https://evil.example`,
    "null",
    "*",
  ];

  interface Answer {
    status: number;
    header(name: string): string | undefined;
  }

  async function overHttp1(method: string, path: string, headers: Record<string, string>) {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: method === "POST" ? "{}" : undefined,
    });
    await response.body?.cancel();
    return {
      status: response.status,
      header: (name: string) => response.headers.get(name) ?? undefined,
    };
  }

  function overHttp2(method: string, path: string, headers: Record<string, string>) {
    return new Promise<Answer>((resolve, reject) => {
      const session = http2.connect(baseUrl);
      session.on("error", reject);
      const stream = session.request({ ":method": method, ":path": path, ...headers });
      stream.on("response", (received) => {
        stream.resume();
        stream.on("end", () => {
          session.close();
          resolve({
            status: Number(received[":status"]),
            header: (name) => {
              const value = received[name];
              return Array.isArray(value) ? value.join(", ") : value;
            },
          });
        });
      });
      stream.on("error", reject);
      stream.end(method === "POST" ? "{}" : undefined);
    });
  }

  const versions = [
    ["HTTP/1.1", overHttp1],
    ["HTTP/2", overHttp2],
  ] as const;
  const preflightHeaders = (origin: string) => ({
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type,connect-protocol-version,authorization",
  });
  const rpcHeaders = (origin: string) => ({ origin, "content-type": "application/json" });

  /** No answer may grant every origin, least of all together with credentials. */
  function assertNoWildcard(answer: Answer, context: string) {
    const allowed = answer.header("access-control-allow-origin");
    assert.notEqual(allowed, "*", `${context}: Access-Control-Allow-Origin: *`);
    if (answer.header("access-control-allow-credentials") === "true") {
      assert.ok(allowed && allowed !== "*", `${context}: credentials without a specific origin`);
    }
  }

  for (const [version, send] of versions) {
    test(`${version}: an origin not on CORS_ORIGINS gets no grant, preflight or request`, async () => {
      for (const origin of refused) {
        const preflight = await send("OPTIONS", rpcPath, preflightHeaders(origin));
        const context = `${version} preflight from ${origin}`;
        assert.equal(preflight.header("access-control-allow-origin"), undefined, context);
        assert.equal(preflight.header("access-control-allow-methods"), undefined, context);
        assert.equal(preflight.header("access-control-allow-headers"), undefined, context);
        assert.equal(preflight.header("access-control-allow-credentials"), undefined, context);
        assertNoWildcard(preflight, context);

        // The server still answers (a browser would keep the answer from the page).
        const actual = await send("POST", rpcPath, rpcHeaders(origin));
        assert.equal(actual.status, 200, `${version} request from ${origin}`);
        assert.equal(actual.header("access-control-allow-origin"), undefined, origin);
        assert.equal(actual.header("access-control-expose-headers"), undefined, origin);
        assert.equal(actual.header("access-control-allow-credentials"), undefined, origin);
        assertNoWildcard(actual, `${version} request from ${origin}`);
      }
    });

    test(`${version}: the allowed origin gets a grant for exactly itself`, async () => {
      const preflight = await send("OPTIONS", rpcPath, preflightHeaders(dashboard));
      assert.ok(preflight.status >= 200 && preflight.status < 300, `status ${preflight.status}`);
      assert.equal(preflight.header("access-control-allow-origin"), dashboard);
      assert.match(preflight.header("vary") ?? "", /\borigin\b/i);
      assert.match(preflight.header("access-control-allow-headers") ?? "", /\bauthorization\b/i);
      assertNoWildcard(preflight, `${version} preflight`);

      const actual = await send("POST", rpcPath, rpcHeaders(dashboard));
      assert.equal(actual.status, 200);
      assert.equal(actual.header("access-control-allow-origin"), dashboard);
      assert.match(actual.header("vary") ?? "", /\borigin\b/i);
      assert.match(actual.header("access-control-expose-headers") ?? "", /\bgrpc-status\b/i);
      // A browser's call is served by the runtime's path (which sends no Date header) on both.
      assert.equal(actual.header("date"), undefined, `${version}: served by the runtime's path`);
      assertNoWildcard(actual, `${version} request`);
    });

    test(`${version}: no answer grants a wildcard, whatever the path or outcome`, async () => {
      for (const origin of [dashboard, "https://evil.example"]) {
        for (const [method, path, headers] of [
          ["GET", "/healthz", { origin }],
          ["GET", "/metrics", { origin }],
          ["GET", "/no/such/path", { origin }],
          ["POST", "/grpc.health.v1.Health/NoSuchMethod", rpcHeaders(origin)],
          ["POST", rpcPath, { origin, "content-type": "text/plain" }],
          ["OPTIONS", "/no/such/path", preflightHeaders(origin)],
        ] as const) {
          const answer = await send(method, path, headers);
          assertNoWildcard(answer, `${version} ${method} ${path} from ${origin}`);
          if (origin !== dashboard) {
            assert.equal(
              answer.header("access-control-allow-origin"),
              undefined,
              `${method} ${path}`,
            );
          }
        }
      }
    });
  }
});

describe("message size limit", () => {
  let limited: RunningService;
  before(async () => {
    limited = await startTestService(probeService, database.url, { MAX_MESSAGE_BYTES: "1024" });
  });
  after(() => limited.stop(100));

  for (const [name, transportOf] of transports) {
    test(`${name}: a request over MAX_MESSAGE_BYTES is resource_exhausted`, async () => {
      const health = createClient(Health, transportOf(limited.server.url));
      // Just under the limit is read and answered (the service is unknown).
      await expectCode(health.check({ service: "s".repeat(900) }), Code.NotFound);
      await expectCode(health.check({ service: "s".repeat(4096) }), Code.ResourceExhausted);
    });
  }

  test('plain HTTP: HTTP 429 with {"code":"resource_exhausted"}', async () => {
    const response = await fetch(`${limited.server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "s".repeat(4096) }),
    });
    assert.equal(response.status, 429);
    assert.equal(((await response.json()) as { code: string }).code, "resource_exhausted");
  });
});

describe("health Watch", () => {
  test("streams the status and says NOT_SERVING when the server closes", async () => {
    const probe = await startTestService(probeService, database.url);
    let stopped: Promise<void> | undefined;
    try {
      const health = createClient(Health, createGrpcTransport({ baseUrl: probe.server.url }));
      const statuses: Status[] = [];
      const watching = (async () => {
        try {
          for await (const response of health.watch({})) statuses.push(response.status);
          return undefined;
        } catch (error) {
          return ConnectError.from(error);
        }
      })();
      await waitFor(() => statuses.at(-1) === Status.SERVING, { message: "never SERVING" });
      stopped = probe.stop(2_000);
      const ending = await watching;
      assert.equal(statuses.at(-1), Status.NOT_SERVING, `statuses seen: ${statuses.join(", ")}`);
      // The stream then ends; if with an error, with the one that tells the client to reconnect.
      if (ending) assert.equal(Code[ending.code], Code[Code.Unavailable], ending.message);
    } finally {
      await (stopped ?? probe.stop(100));
    }
  });

  test("with a drain delay, a closing server says it is not ready and still answers every call until the delay is over", async () => {
    const probe = await startTestService(probeService, database.url, {
      DRAIN_DELAY_MS: "1500",
    });
    const url = probe.server.url;
    const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
    const closing = probe.stop(1_000);
    try {
      await waitFor(async () => (await fetch(`${url}/readyz`)).status === 503, {
        message: "/readyz never said not ready",
      });
      // Still served over new and existing connections for the rest of the delay.
      for (let i = 0; i < 5; i++) {
        assert.equal((await health.check({})).status, Status.NOT_SERVING);
        assert.equal((await fetch(`${url}/healthz`)).status, 200);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await closing;
    }
    await assert.rejects(fetch(`${url}/healthz`), "closed after the delay");
  });

  test("an unknown service is SERVICE_UNKNOWN, not an error", async () => {
    const controller = new AbortController();
    const health = createClient(Health, createGrpcTransport({ baseUrl }));
    for await (const response of health.watch(
      { service: "no.such.Service" },
      { signal: controller.signal },
    )) {
      assert.equal(response.status, Status.SERVICE_UNKNOWN);
      break;
    }
    controller.abort();
  });

  test("the handler ends when the client goes away", async () => {
    const labels = { rpc_service: "grpc.health.v1.Health", rpc_method: "Watch" };
    const running = async () =>
      (await readMetric(baseUrl, "rpc_server_started_total", labels)) -
      (await readMetric(baseUrl, "rpc_server_duration_seconds_count", labels));
    await waitFor(async () => (await running()) === 0, { message: "earlier watches still run" });

    const controller = new AbortController();
    const health = createClient(Health, createGrpcTransport({ baseUrl }));
    const iterator = health.watch({}, { signal: controller.signal })[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.status, Status.SERVING);
    assert.equal(await running(), 1);
    controller.abort();
    await assert.rejects(iterator.next());
    await waitFor(async () => (await running()) === 0, {
      timeoutMs: 3_000,
      message: "the Watch handler kept running after the client left",
    });
  });
});

describe("metrics", () => {
  test("count every RPC by method and outcome, streams when they end", async () => {
    const reflectionLabels = {
      rpc_service: "grpc.reflection.v1.ServerReflection",
      rpc_method: "ServerReflectionInfo",
    };
    const count = (labels: Record<string, string>) =>
      readMetric(baseUrl, "rpc_server_duration_seconds_count", labels);
    const checkOk = { rpc_service: "grpc.health.v1.Health", rpc_method: "Check", code: "ok" };
    const checkNotFound = { ...checkOk, code: "not_found" };
    const before = {
      ok: await count(checkOk),
      notFound: await count(checkNotFound),
      reflection: await count({ ...reflectionLabels, code: "ok" }),
    };

    const health = createClient(Health, createGrpcTransport({ baseUrl }));
    await health.check({});
    await expectCode(health.check({ service: "no.such.Service" }), Code.NotFound);
    const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl }));
    const responses = [];
    let reflectionHeader: Headers | undefined;
    for await (const response of reflection.serverReflectionInfo(
      (async function* () {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
      })(),
      {
        onHeader: (header) => {
          reflectionHeader = header;
        },
      },
    )) {
      responses.push(response);
    }
    assert.equal(responses.length, 1);
    // Files come with the contracts' comments (source info), for tools that show them.
    for await (const response of reflection.serverReflectionInfo(
      (async function* () {
        yield {
          messageRequest: {
            case: "fileContainingSymbol" as const,
            value: "shop.mesh.v1.StatsService",
          },
        };
      })(),
    )) {
      assert.equal(response.messageResponse.case, "fileDescriptorResponse");
      const files =
        response.messageResponse.case === "fileDescriptorResponse"
          ? response.messageResponse.value.fileDescriptorProto.map((bytes) =>
              fromBinary(FileDescriptorProtoSchema, bytes),
            )
          : [];
      const stats = files.find((file) => file.name === "shop/mesh/v1/stats_service.proto");
      const comments = stats?.sourceCodeInfo?.location.filter((l) => l.leadingComments !== "");
      assert.ok((comments?.length ?? 0) > 0, "the service's file carries its comments");
    }
    // A bidi stream like any other: served by the runtime's path (which sends no Date header).
    assert.equal(reflectionHeader?.get("date"), null, "reflection served by the runtime's path");

    await waitFor(
      async () => (await count({ ...reflectionLabels, code: "ok" })) > before.reflection,
      {
        message: "a stream that ended normally was not counted as ok",
      },
    );
    assert.equal(await count(checkOk), before.ok + 1);
    assert.equal(await count(checkNotFound), before.notFound + 1);
    assert.equal(await count({ ...reflectionLabels, code: "canceled" }), 0);
  });
});
