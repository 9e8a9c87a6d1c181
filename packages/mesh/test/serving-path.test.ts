// The runtime's serving path (src/protocol/serving-path.ts): unary and server-streaming calls of gRPC,
// gRPC-web and Connect over HTTP/2 and HTTP/1.1, served from the HTTP stream with the router's
// implementations, interceptors and request gate, checked with clients nobody here wrote
// (@grpc/grpc-js, connect-node) and with raw HTTP frames, over serve() itself.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { OrderService } from "@shop/api/shop/order/v1/order_service_pb";
import {
  BatchCreateUsersRequestSchema,
  GetUserRequestSchema,
  GetUserResponseSchema,
  UserService,
  WatchUsersRequestSchema,
  type WatchUsersResponse,
  WatchUsersResponseSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { createRequestStream, waitFor } from "@shop/testing";
import pino from "pino";
import {
  convertBatchesOnce,
  type SharedEncoding,
  sharedEncoding,
} from "../src/change-feed/convert-once.ts";
import { defaultLimits, type Server, serve } from "../src/index.ts";
import { createServingPath } from "../src/protocol/serving-path.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

// What the handlers saw, for the tests to look at.
const seen = {
  slowSignal: undefined as AbortSignal | undefined,
  answeredSignal: undefined as AbortSignal | undefined,
  lateSignal: undefined as AbortSignal | undefined,
  watchSignals: [] as AbortSignal[],
  intercepted: [] as string[],
  requestMethods: [] as string[],
  /** TrackOrders handlers running now. */
  tracking: 0,
};
// Every watcher gets the same message object for a change, as the services' watch handlers do.
const watchers = new Set<(message: WatchUsersResponse) => void>();
const broadcast = (message: WatchUsersResponse) => {
  for (const deliver of watchers) deliver(message);
};

const recordCalls: Interceptor = (next) => (req) => {
  seen.intercepted.push(`${req.method.name} ${req.header.get("x-probe") ?? ""}`);
  return next(req);
};

// Answers with a copy of the response, as an interceptor that changes part of it would.
const copyAnswers: Interceptor = (next) => async (req) => {
  const res = await next(req);
  return req.header.get("x-probe") === "copy" && !res.stream ? { ...res } : res;
};

// Passes on a request rebuilt from its string-keyed fields only, not a copy of it.
const rebuildRequests: Interceptor = (next) => (req) =>
  next(
    req.header.get("x-probe") === "rebuilt"
      ? (Object.fromEntries(Object.entries(req)) as typeof req)
      : req,
  );

let server: Server;

/**
 * A status message with what the gRPC specification leaves as it is (':', '=', '/', printable ASCII)
 * and what it percent-encodes ('%', non-ASCII, a newline): grpc-js decodes grpc-message with
 * decodeURI, which leaves %3A, %3D and %2F encoded, so it shows this as written only when those
 * characters were sent as they are.
 */
const punctuatedMessage =
  'missing bearer token: send the header "authorization: Bearer <token>"\nkey=value, path /a/b?c#d, 100% ünïcödé ✓';
before(async () => {
  server = await serve({
    name: "serving-path-test",
    services: [UserService, OrderService],
    // The ids here name what the handler does ("slow", "crash"), not users: this test is about
    // serving, and the contract's rules (an id is a UUID) would refuse them first.
    validateRequests: false,
    routes: (router) =>
      router
        .service(UserService, {
          async getUser(req, context) {
            seen.requestMethods.push(context.requestMethod);
            switch (req.id) {
              case "slow":
                // Ignores its signal: the deadline must still end the call on time.
                seen.slowSignal = context.signal;
                await new Promise((resolve) => setTimeout(resolve, 3_000));
                return { user: { id: "slow" } };
              case "answered":
                seen.answeredSignal = context.signal;
                return { user: { id: "answered" } };
              case "late":
                // Looks at its signal only once its client has gone.
                await new Promise((resolve) => setTimeout(resolve, 300));
                seen.lateSignal = context.signal;
                return { user: { id: "late" } };
              case "missing":
                throw new ConnectError("no user missing", Code.NotFound, { "x-why": "absent" });
              case "punctuated":
                throw new ConnectError(punctuatedMessage, Code.FailedPrecondition);
              case "crash":
                throw new Error("password=hunter2 at /srv/secret/path.ts");
              case "headers":
                context.responseHeader.set("x-served-by", "test");
                context.responseTrailer.set("x-trailer", "done");
                return { user: { id: "headers" } };
              default:
                return { user: { id: req.id, name: `user ${req.id}` } };
            }
          },
          async *watchUsers(req, context) {
            seen.watchSignals.push(context.signal);
            if (req.startRevision < 0n) {
              throw new ConnectError("start_revision must be >= 0", Code.InvalidArgument);
            }
            context.responseHeader.set("x-watch", "open");
            const queue: WatchUsersResponse[] = [];
            let wake: (() => void) | undefined;
            const deliver = (message: WatchUsersResponse) => {
              queue.push(message);
              wake?.();
            };
            watchers.add(deliver);
            try {
              while (!context.signal.aborted) {
                const message = queue.shift();
                if (message) {
                  yield message;
                  continue;
                }
                await new Promise<void>((resolve) => {
                  wake = resolve;
                  context.signal.addEventListener("abort", () => resolve(), { once: true });
                });
              }
            } finally {
              watchers.delete(deliver);
            }
          },
          async batchCreateUsers(requests, context) {
            const names: string[] = [];
            if (context.requestHeader.get("x-probe") === "stall") {
              // Stops reading its requests until its call ends.
              await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
              return { users: [] };
            }
            if (context.requestHeader.get("x-probe") === "parallel") {
              // Asks for two messages without waiting for the first.
              const reading = requests[Symbol.asyncIterator]();
              const [first, second] = await Promise.all([reading.next(), reading.next()]);
              for (const result of [first, second]) if (!result.done) names.push(result.value.name);
            }
            for await (const request of requests) {
              if (request.name === "fail") {
                throw new ConnectError("no user may be called fail", Code.InvalidArgument);
              }
              names.push(request.name);
            }
            context.responseHeader.set("x-count", String(names.length));
            context.responseTrailer.set("x-trailer", "done");
            return { users: names.map((name) => ({ id: name, name })) };
          },
        })
        .service(OrderService, {
          // Answers each message as it comes: its ids back as unknown, at the revision of its count.
          async *trackOrders(requests, context) {
            seen.tracking++;
            try {
              context.responseHeader.set("x-tracking", "open");
              let count = 0n;
              for await (const request of requests) {
                count++;
                if (request.addOrderIds.includes("fail")) {
                  throw new ConnectError("cannot track fail", Code.FailedPrecondition);
                }
                yield { revision: count, unknownOrderIds: request.addOrderIds };
              }
            } finally {
              seen.tracking--;
            }
          },
        }),
    port: 0,
    host: "127.0.0.1",
    limits: { ...defaultLimits, maxMessageBytes: 1024 },
    corsOrigins: [],
    logger: pino({ level: "silent" }),
    readiness: async () => ({}),
    interceptors: [recordCalls, copyAnswers, rebuildRequests],
  });
});
after(() => server.close(100));

const address = () => `127.0.0.1:${server.port}`;

/** A grpc-js client of UserService from the .proto files, as a grpc-js user would build it. */
function grpcJsClient(): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const definition = protoLoader.loadSync("shop/user/v1/user_service.proto", {
    includeDirs: [path.join(root, "proto")],
    keepCase: true,
    longs: String,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    shop: { user: { v1: { UserService: new (...args: unknown[]) => grpc.Client } } };
  };
  return new loaded.shop.user.v1.UserService(
    address(),
    grpc.credentials.createInsecure(),
  ) as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Record<string, unknown>) => void,
) => grpc.ClientUnaryCall;

/** A unary call with grpc-js, resolving with its response, headers and trailers. */
function grpcJsUnary(
  client: ReturnType<typeof grpcJsClient>,
  request: object,
  options: grpc.CallOptions = {},
  metadata = new grpc.Metadata(),
): Promise<{
  error: grpc.ServiceError | null;
  response?: Record<string, unknown>;
  headers?: grpc.Metadata;
  trailers?: grpc.Metadata;
}> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let result: { error: grpc.ServiceError | null; response?: Record<string, unknown> };
    const call = (client.getUser as Unary).call(
      client,
      request,
      metadata,
      options,
      (error, response) => {
        result = { error, response };
      },
    );
    call.on("metadata", (metadata: grpc.Metadata) => {
      headers = metadata;
    });
    call.on("status", (status: grpc.StatusObject) => {
      // The callback runs before the status event.
      setImmediate(() => resolve({ ...result, headers, trailers: status.metadata }));
    });
  });
}

/** One raw gRPC request over HTTP/2: what comes back, headers and trailers apart. */
async function rawGrpc(
  pathName: string,
  body: Buffer,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<{
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  data: Buffer;
}> {
  const session = http2.connect(`http://${address()}`);
  try {
    return await new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": pathName,
        "content-type": "application/grpc",
        te: "trailers",
        ...extraHeaders,
      });
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | undefined;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        headers = h;
      });
      stream.on("trailers", (t) => {
        trailers = t;
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ headers, trailers, data: Buffer.concat(chunks) }));
      stream.on("error", reject);
      stream.end(body);
    });
  } finally {
    session.close();
  }
}

/**
 * A watch by `client` gets three changes in order; one from a negative revision fails with
 * invalid_argument. Returns the first watch's response headers.
 */
async function assertWatchStreams(
  client: Client<typeof UserService>,
): Promise<Headers | undefined> {
  await waitFor(() => watchers.size === 0, { message: "earlier watches never ended" });
  const controller = new AbortController();
  const revisions: bigint[] = [];
  let header: Headers | undefined;
  const done = (async () => {
    const stream = client.watchUsers(
      {},
      {
        signal: controller.signal,
        onHeader: (h) => {
          header = h;
        },
      },
    );
    for await (const message of stream) {
      revisions.push(message.revision);
      if (revisions.length === 3) return;
    }
  })();
  await waitFor(() => watchers.size === 1, { message: "the watch never opened" });
  for (let revision = 1n; revision <= 3n; revision++) {
    broadcast(create(WatchUsersResponseSchema, { revision }));
  }
  await done;
  controller.abort();
  assert.deepEqual(revisions, [1n, 2n, 3n]);
  const refused = await (async () => {
    for await (const _ of client.watchUsers({ startRevision: -1n })) {
      // nothing arrives before the error
    }
  })().catch((e: unknown) => ConnectError.from(e));
  assert.ok(refused instanceof ConnectError);
  assert.equal(refused.code, Code.InvalidArgument);
  return header;
}

/** GetUser("missing") fails with the handler's code, message and metadata. */
async function assertMissingUserKeepsItsError(client: Client<typeof UserService>): Promise<void> {
  const missing = await client
    .getUser({ id: "missing" })
    .catch((e: unknown) => ConnectError.from(e));
  assert.ok(missing instanceof ConnectError);
  assert.equal(missing.code, Code.NotFound);
  assert.equal(missing.rawMessage, "no user missing");
  assert.equal(missing.metadata.get("x-why"), "absent");
}

/** GetUser("slow") with a 200 ms deadline ends with deadline_exceeded, well before the handler. */
async function assertSlowCallEndsOnTime(client: Client<typeof UserService>): Promise<void> {
  const started = Date.now();
  const late = await client
    .getUser({ id: "slow" }, { timeoutMs: 200 })
    .catch((e: unknown) => ConnectError.from(e));
  assert.ok(late instanceof ConnectError);
  assert.equal(late.code, Code.DeadlineExceeded);
  assert.ok(Date.now() - started < 1_500);
}

/** GetUser(`id`) by `client`, with the response's headers and trailers as the client saw them. */
async function getUserSeeingHeaders(client: Client<typeof UserService>, id: string) {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  const answer = await client.getUser(
    { id },
    {
      onHeader: (h) => {
        header = h;
      },
      onTrailer: (t) => {
        trailer = t;
      },
    },
  );
  return { answer, header, trailer };
}

function envelope(message: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.alloc(5 + message.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

const getUserPath = "/shop.user.v1.UserService/GetUser";
const getUserBytes = (id: string) =>
  toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { id }));

test("a service registered with options of its own, or twice, is refused when registered", () => {
  const { router } = createServingPath({
    interceptors: [],
    contextValues: () => createContextValues(),
    maxMessageBytes: 1024,
    maxSendMessageBytes: 1024,
    maxTimeoutMs: 1000,
    compressions: [],
    compressMinBytes: 1024,
  });
  assert.throws(
    () => router.service(UserService, {}, { jsonOptions: { ignoreUnknownFields: false } }),
    /shop\.user\.v1\.UserService: options per service are not supported/,
  );
  router.service(UserService, {});
  assert.throws(
    () => router.service(UserService, {}),
    /UserService\/CreateUser is registered twice/,
  );
  assert.deepEqual(router.handlers, [], "no connect-es handlers: the path serves the calls");
});

describe("unary calls over gRPC", () => {
  test("grpc-js gets the answer, the handler's headers and trailers, through the interceptors", async () => {
    const client = grpcJsClient();
    const metadata = new grpc.Metadata();
    metadata.set("x-probe", "unary");
    const { error, response, headers, trailers } = await grpcJsUnary(
      client,
      { id: "headers" },
      {},
      metadata,
    );
    client.close();
    assert.equal(error, null);
    assert.equal((response?.user as { id?: string } | undefined)?.id, "headers");
    assert.deepEqual(headers?.get("x-served-by"), ["test"]);
    assert.deepEqual(trailers?.get("x-trailer"), ["done"]);
    assert.ok(seen.intercepted.includes("GetUser unary"), "the router's interceptors ran");
  });

  test("the handler's headers and trailers go out when an interceptor answers with a copy", async () => {
    const client = grpcJsClient();
    const metadata = new grpc.Metadata();
    metadata.set("x-probe", "copy");
    const { error, headers, trailers } = await grpcJsUnary(client, { id: "headers" }, {}, metadata);
    client.close();
    assert.equal(error, null);
    assert.deepEqual(headers?.get("x-served-by"), ["test"]);
    assert.deepEqual(trailers?.get("x-trailer"), ["done"]);
    assert.ok(seen.intercepted.includes("GetUser copy"));
  });

  test("a request an interceptor rebuilt from its fields instead of copying is served like a copy", async () => {
    const client = grpcJsClient();
    const metadata = new grpc.Metadata();
    metadata.set("x-probe", "rebuilt");
    const rebuilt = await grpcJsUnary(client, { id: "u1" }, {}, metadata);
    client.close();
    assert.equal(rebuilt.error, null);
    assert.equal((rebuilt.response?.user as { id?: string } | undefined)?.id, "u1");
  });

  test("an error before any message is answered trailers-only, with its code, message and metadata", async () => {
    const { headers, trailers, data } = await rawGrpc(
      getUserPath,
      envelope(getUserBytes("missing")),
    );
    assert.equal(headers[":status"], 200);
    assert.equal(headers["grpc-status"], String(Code.NotFound), "status in the only headers");
    assert.equal(decodeURIComponent(String(headers["grpc-message"])), "no user missing");
    assert.equal(headers["x-why"], "absent");
    assert.equal(trailers, undefined);
    assert.equal(data.length, 0);
  });

  test("grpc-js reads an error's message as written: ':', '=', '/', '%', non-ASCII and a newline", async () => {
    const client = grpcJsClient();
    const { error } = await grpcJsUnary(client, { id: "punctuated" });
    client.close();
    assert.equal(error?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(error?.details, punctuatedMessage);
  });

  test("what a handler throws that is not a ConnectError is internal, without its text", async () => {
    const client = grpcJsClient();
    const { error } = await grpcJsUnary(client, { id: "crash" });
    client.close();
    assert.equal(error?.code, grpc.status.INTERNAL);
    assert.doesNotMatch(error?.details ?? "", /hunter2|\/srv/);
  });

  test("the deadline ends the call on time although the handler ignores it, and aborts its signal", async () => {
    // A raw client with no timer of its own: the answer can only come from the server's deadline.
    const started = Date.now();
    const { headers, trailers } = await rawGrpc(getUserPath, envelope(getUserBytes("slow")), {
      "grpc-timeout": "200m",
    });
    const took = Date.now() - started;
    assert.equal(
      headers["grpc-status"] ?? trailers?.["grpc-status"],
      String(Code.DeadlineExceeded),
    );
    assert.ok(took < 1_500, `answered after ${took} ms; the handler runs for 3 s`);
    await waitFor(() => seen.slowSignal?.aborted === true, {
      message: "the handler's signal was never aborted",
    });
    assert.equal(ConnectError.from(seen.slowSignal?.reason).code, Code.DeadlineExceeded);
  });

  test("a handler's signal aborts once its call is answered", async () => {
    const client = grpcJsClient();
    const { error } = await grpcJsUnary(client, { id: "answered" });
    client.close();
    assert.equal(error, null);
    await waitFor(() => seen.answeredSignal?.aborted === true, {
      message: "the signal of an answered call never aborted",
    });
    assert.equal(ConnectError.from(seen.answeredSignal?.reason).code, Code.Canceled);
  });

  test("a handler that looks at its signal after its client has gone finds it aborted", async () => {
    const session = http2.connect(`http://${address()}`);
    const stream = session.request({
      ":method": "POST",
      ":path": getUserPath,
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => {});
    stream.end(envelope(getUserBytes("late")));
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => seen.lateSignal !== undefined, { message: "the handler never went on" });
    session.close();
    assert.equal(seen.lateSignal?.aborted, true);
    assert.equal(ConnectError.from(seen.lateSignal?.reason).code, Code.Canceled);
  });

  test("a timeout above the server's maximum is invalid_argument", async () => {
    const { headers } = await rawGrpc(getUserPath, envelope(getUserBytes("a")), {
      "grpc-timeout": "99999999H",
    });
    assert.equal(headers["grpc-status"], String(Code.InvalidArgument));
  });

  const malformed: [string, Buffer, Code][] = [
    ["an empty body", Buffer.alloc(0), Code.Unimplemented],
    [
      "a body ending inside the envelope",
      envelope(getUserBytes("a")).subarray(0, 7),
      Code.InvalidArgument,
    ],
    [
      "two messages",
      Buffer.concat([envelope(getUserBytes("a")), envelope(getUserBytes("b"))]),
      Code.Unimplemented,
    ],
    [
      "a message flagged compressed without a grpc-encoding",
      envelope(getUserBytes("a"), 1),
      Code.Internal,
    ],
    [
      "bytes that are not the message",
      envelope(Buffer.from([0x0a, 0xff, 0xff])),
      Code.InvalidArgument,
    ],
    [
      "a message announced larger than the limit",
      Buffer.from([0, 0, 0, 8, 0]),
      Code.ResourceExhausted,
    ],
  ];
  for (const [name, body, code] of malformed) {
    test(`${name} is ${Code[code]}, and the server serves on`, async () => {
      const { headers, trailers } = await rawGrpc(getUserPath, body);
      const status = headers["grpc-status"] ?? trailers?.["grpc-status"];
      assert.equal(status, String(code), decodeURIComponent(String(headers["grpc-message"])));
      const ok = await rawGrpc(getUserPath, envelope(getUserBytes("after")));
      assert.equal(ok.trailers?.["grpc-status"], "0");
    });
  }

  test("a response larger than the limit is resource_exhausted", async () => {
    const { error } = await grpcJsUnary(grpcJsClient(), { id: "x".repeat(2_000) });
    assert.equal(error?.code, grpc.status.RESOURCE_EXHAUSTED);
  });

  test("compressed calls are served on the runtime's path: gzip and br both ways, large answers compressed", async () => {
    // grpc-js compressing its requests with gzip, and taking gzip answers.
    const client = new (
      grpcJsClient().constructor as new (
        ...args: unknown[]
      ) => ReturnType<typeof grpcJsClient>
    )(address(), grpc.credentials.createInsecure(), {
      "grpc.default_compression_algorithm": grpc.compressionAlgorithms.gzip,
    });
    const long = "z".repeat(600);
    const gzipped = await grpcJsUnary(client, { id: long });
    client.close();
    assert.equal(gzipped.error, null);
    assert.equal((gzipped.response?.user as { id?: string } | undefined)?.id, long);

    // The same on the wire: a gzip request, an answer in the compression the client prefers.
    const request = toBinary(GetUserRequestSchema, create(GetUserRequestSchema, { id: long }));
    const big = await rawGrpc(getUserPath, envelope(gzipSync(request), 1), {
      "grpc-encoding": "gzip",
      "grpc-accept-encoding": "br, gzip",
    });
    assert.equal(big.headers.date, undefined, "served by the runtime's path");
    assert.equal(big.headers["grpc-encoding"], "br");
    assert.equal(big.data[0], 1, "an answer over 1 KiB is compressed");
    const answer = fromBinary(GetUserResponseSchema, brotliDecompressSync(big.data.subarray(5)));
    assert.equal(answer.user?.name, `user ${long}`);
    const small = await rawGrpc(getUserPath, envelope(getUserBytes("small")), {
      "grpc-accept-encoding": "gzip",
    });
    assert.equal(small.headers["grpc-encoding"], "gzip");
    assert.equal(small.data[0], 0, "a small answer is not");
    assert.equal(small.trailers?.["grpc-status"], "0");
  });

  for (const [name, body, code] of [
    ["a message that does not decompress", envelope(Buffer.from("not gzip"), 1), "3"],
    [
      "a message over the limit once decompressed",
      envelope(gzipSync(getUserBytes("y".repeat(5_000))), 1),
      "8",
    ],
  ] as const) {
    test(`${name} is ${code === "3" ? "invalid_argument" : "resource_exhausted"}, on the runtime's path`, async () => {
      const { headers, trailers } = await rawGrpc(getUserPath, body, { "grpc-encoding": "gzip" });
      assert.equal(headers.date, undefined, "answered by the runtime's path");
      assert.equal(headers["grpc-status"] ?? trailers?.["grpc-status"], code);
    });
  }

  test("a compression the server does not take is unimplemented, naming those it takes", async () => {
    const zstd = await rawGrpc(getUserPath, envelope(getUserBytes("z")), {
      "grpc-encoding": "zstd",
    });
    assert.equal(zstd.headers.date, undefined, "answered by the runtime's path");
    assert.equal(zstd.headers["grpc-status"], "12");
    assert.equal(zstd.headers["grpc-accept-encoding"], "gzip,br");
    assert.equal(
      decodeURIComponent(String(zstd.headers["grpc-message"])),
      'unknown compression "zstd": supported encodings are gzip,br',
    );
    const connect = await fetch(`${server.url}${getUserPath}`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "zstd" },
      body: '{"id": "z"}',
    });
    assert.equal(connect.status, 501);
    assert.equal(connect.headers.get("accept-encoding"), "gzip,br");
    assert.equal(((await connect.json()) as { code: string }).code, "unimplemented");
    assert.equal(connect.headers.get("date"), null, "answered by the runtime's path");
  });

  test("a request no wire takes is refused with the HTTP status connect-es gives it", async () => {
    // An unknown method: HTTP 404, which gRPC clients read as unimplemented.
    const unknown = await rawGrpc(
      "/shop.user.v1.UserService/NoSuchMethod",
      envelope(Buffer.alloc(0)),
    );
    assert.equal(unknown.headers[":status"], 404);
    // gRPC-web's text encoding is not taken; nor is a content type no protocol has.
    for (const contentType of ["application/grpc-web-text", "text/plain", "application/grpc+xml"]) {
      const refused = await rawGrpc(getUserPath, envelope(getUserBytes("a")), {
        "content-type": contentType,
      });
      assert.equal(refused.headers[":status"], 415, contentType);
      assert.equal(refused.headers.date, undefined, "answered by the runtime's path");
    }
    const put = await rawGrpc(getUserPath, envelope(getUserBytes("a")), { ":method": "PUT" });
    assert.equal(put.headers[":status"], 405);
    // A gRPC content type spelt otherwise is still gRPC.
    const upper = await rawGrpc(getUserPath, envelope(getUserBytes("upper")), {
      "content-type": "Application/GRPC+Proto",
    });
    assert.equal(upper.trailers?.["grpc-status"], "0");
  });

  test("a malformed Connect timeout is invalid_argument; another Connect protocol version is served, as by connect-es", async () => {
    const call = (headers: Record<string, string>) =>
      fetch(`${server.url}${getUserPath}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: '{"id": "t"}',
      });
    for (const timeout of ["soon", "-5", "12345678901"]) {
      const malformed = await call({ "connect-timeout-ms": timeout });
      assert.equal(malformed.status, 400, timeout);
      const error = (await malformed.json()) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, /timeout/);
      assert.equal(malformed.headers.get("date"), null, "answered by the runtime's path");
    }
    const version = await call({ "connect-protocol-version": "2" });
    assert.equal(version.status, 200);
    assert.equal(((await version.json()) as { user: { id: string } }).user.id, "t");
  });

  test("gRPC over HTTP/1.1 gets its status in the chunked body's trailers, or trailers-only", async () => {
    const { request } = await import("node:http");
    const call = (id: string) =>
      new Promise<{
        status: number;
        body: Buffer;
        headers: NodeJS.Dict<string | string[]>;
        trailers: NodeJS.Dict<string>;
      }>((resolve, reject) => {
        const req = request(`${server.url}${getUserPath}`, {
          method: "POST",
          headers: { "content-type": "application/grpc", te: "trailers" },
        });
        req.on("response", (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks),
              headers: res.headers,
              trailers: res.trailers,
            }),
          );
        });
        req.on("error", reject);
        req.end(envelope(getUserBytes(id)));
      });
    const answered = await call("h1");
    assert.equal(answered.status, 200);
    assert.equal(answered.trailers["grpc-status"], "0");
    const user = fromBinary(GetUserResponseSchema, answered.body.subarray(5));
    assert.equal(user.user?.id, "h1");
    assert.equal(answered.headers["grpc-status"], undefined, "the status comes last");
    // An error before any message is trailers-only: the status goes with the headers.
    const missing = await call("missing");
    assert.equal(missing.headers["grpc-status"], String(Code.NotFound));
    assert.equal(missing.headers["grpc-message"], "no user missing");
  });
});

for (const [httpVersion, useHttpGet] of [
  ["1.1", false],
  ["2", false],
  ["1.1", true],
] as const) {
  test(`Connect unary ${useHttpGet ? "GET" : "POST"} over HTTP/${httpVersion}, gzip both ways, on the runtime's path`, async () => {
    const connect = createClient(
      UserService,
      createConnectTransport({
        baseUrl: server.url,
        httpVersion,
        useBinaryFormat: false,
        useHttpGet,
        sendCompression: compressionGzip,
        compressMinBytes: 0,
      }),
    );
    const long = "g".repeat(600);
    let header: Headers | undefined;
    const answer = await connect.getUser(
      { id: long },
      {
        onHeader: (h) => {
          header = h;
        },
      },
    );
    assert.equal(answer.user?.name, `user ${long}`);
    assert.equal(header?.get("date"), null, "served by the runtime's path");
    assert.equal(header?.get("content-encoding"), "gzip", "the answer over 1 KiB is compressed");
  });
}

for (const [name, httpVersion, useBinaryFormat] of [
  ["JSON over HTTP/1.1", "1.1", false],
  ["binary over HTTP/2", "2", true],
  ["JSON over HTTP/2", "2", false],
] as const) {
  describe(`Connect unary calls, ${name}`, () => {
    let connect: Client<typeof UserService>;
    before(() => {
      connect = createClient(
        UserService,
        createConnectTransport({ baseUrl: server.url, httpVersion, useBinaryFormat }),
      );
    });

    test("the answer, the handler's headers and trailers, through the interceptors, on the runtime's path", async () => {
      const { answer, header, trailer } = await getUserSeeingHeaders(connect, "headers");
      assert.equal(answer.user?.id, "headers");
      assert.equal(header?.get("x-served-by"), "test");
      assert.equal(trailer?.get("x-trailer"), "done");
      // connect-es answers through Node's compatibility API, which adds a Date header; the
      // runtime's path sends none.
      assert.equal(header?.get("date"), null, "served by the runtime's path");
      assert.equal(
        header?.get("content-type"),
        useBinaryFormat ? "application/proto" : "application/json",
      );
    });

    test("an error keeps its code, message and metadata; what is not a ConnectError is internal, without its text", async () => {
      await assertMissingUserKeepsItsError(connect);
      const crash = await connect
        .getUser({ id: "crash" })
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(crash instanceof ConnectError);
      assert.equal(crash.code, Code.Internal);
      assert.doesNotMatch(crash.rawMessage, /hunter2|\/srv/);
    });

    test("the deadline ends the call on time although the handler ignores it", async () => {
      await assertSlowCallEndsOnTime(connect);
    });

    test("a request larger than the limit is resource_exhausted", async () => {
      const error = await connect
        .getUser({ id: "x".repeat(2_000) })
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.ResourceExhausted);
    });

    test("a request an interceptor rebuilt from its fields is served like a copy", async () => {
      const answer = await connect.getUser({ id: "u2" }, { headers: { "x-probe": "rebuilt" } });
      assert.equal(answer.user?.id, "u2");
    });
  });
}

for (const [httpVersion, useBinaryFormat] of [
  ["1.1", true],
  ["2", true],
  ["1.1", false],
  ["2", false],
] as const) {
  describe(`gRPC-web calls over HTTP/${httpVersion}, ${useBinaryFormat ? "protobuf" : "JSON"}`, () => {
    let web: Client<typeof UserService>;
    before(() => {
      web = createClient(
        UserService,
        createGrpcWebTransport({ baseUrl: server.url, httpVersion, useBinaryFormat }),
      );
    });

    test("the answer, the handler's headers and trailers (in the body's last frame), on the runtime's path", async () => {
      const { answer, header, trailer } = await getUserSeeingHeaders(web, "headers");
      assert.equal(answer.user?.id, "headers");
      assert.equal(header?.get("x-served-by"), "test");
      assert.equal(
        header?.get("content-type"),
        useBinaryFormat ? "application/grpc-web+proto" : "application/grpc-web+json",
      );
      assert.equal(header?.get("date"), null, "served by the runtime's path");
      assert.equal(trailer?.get("x-trailer"), "done");
    });

    test("an error keeps its code, message and metadata; the deadline ends a call on time", async () => {
      await assertMissingUserKeepsItsError(web);
      await assertSlowCallEndsOnTime(web);
    });

    test("a watch streams every change, then ends with the server's status", async () => {
      await assertWatchStreams(web);
    });
  });
}

for (const [name, httpVersion, useBinaryFormat] of [
  ["JSON over HTTP/1.1", "1.1", false],
  ["binary over HTTP/2", "2", true],
] as const) {
  test(`a Connect watch, ${name}, streams every change on the runtime's path, then ends with the server's status`, async () => {
    const connect = createClient(
      UserService,
      createConnectTransport({ baseUrl: server.url, httpVersion, useBinaryFormat }),
    );
    const header = await assertWatchStreams(connect);
    assert.equal(header?.get("date"), null, "served by the runtime's path");
    assert.equal(header?.get("x-watch"), "open");
    assert.equal(
      header?.get("content-type"),
      useBinaryFormat ? "application/connect+proto" : "application/connect+json",
    );
  });
}

for (const httpVersion of ["1.1", "2"] as const) {
  test(`Connect GET over HTTP/${httpVersion} (a method without side effects) on the runtime's path, JSON and protobuf`, async () => {
    for (const useBinaryFormat of [false, true]) {
      const connect = createClient(
        UserService,
        createConnectTransport({
          baseUrl: server.url,
          httpVersion,
          useBinaryFormat,
          useHttpGet: true,
        }),
      );
      const { answer, header, trailer } = await getUserSeeingHeaders(connect, "headers");
      assert.equal(answer.user?.id, "headers");
      assert.equal(header?.get("date"), null, "served by the runtime's path");
      assert.equal(trailer?.get("x-trailer"), "done");
      assert.ok(seen.requestMethods.includes("GET"), "the handler saw a GET");
      await assertMissingUserKeepsItsError(connect);
    }
  });
}

test("a Connect body that does not decode is invalid_argument, with the server serving on", async () => {
  for (const [contentType, body] of [
    ["application/json", "{not json"],
    ["application/json", '{"id": 5}'],
    ["application/proto", "\xff\xff\xff"],
  ] as const) {
    const response = await fetch(`${server.url}${getUserPath}`, {
      method: "POST",
      headers: { "content-type": contentType },
      body: Buffer.from(body, "latin1"),
    });
    assert.equal(response.status, 400, `${contentType} ${body}`);
    const error = (await response.json()) as { code: string; message: string };
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /cannot decode message shop\.user\.v1\.GetUserRequest/);
    assert.equal(response.headers.get("date"), null, "answered by the runtime's path");
  }
});

describe("server-streaming calls over gRPC", () => {
  test("50 watchers get every change once, in order, with the handler's headers", async () => {
    const client = createClient(UserService, createGrpcTransport({ baseUrl: server.url }));
    const controller = new AbortController();
    const received: bigint[][] = Array.from({ length: 50 }, () => []);
    const headerSeen: (string | null)[] = [];
    const before = watchers.size;
    const done = received.map(async (revisions) => {
      const stream = client.watchUsers(
        {},
        {
          signal: controller.signal,
          onHeader: (header) => headerSeen.push(header.get("x-watch")),
        },
      );
      for await (const message of stream) {
        revisions.push(message.revision);
        if (revisions.length === 20) return;
      }
    });
    await waitFor(() => watchers.size === before + 50, { message: "the watchers never opened" });
    for (let revision = 1n; revision <= 20n; revision++) {
      broadcast(create(WatchUsersResponseSchema, { revision }));
    }
    await Promise.all(done);
    controller.abort();
    const expected = Array.from({ length: 20 }, (_, i) => BigInt(i + 1));
    for (const revisions of received) assert.deepEqual(revisions, expected);
    assert.deepEqual(headerSeen, Array(50).fill("open"));
  });

  test("a message sent again after a change goes out as it is now; one made by convertBatchesOnce is encoded once for every stream", async () => {
    const client = createClient(UserService, createGrpcTransport({ baseUrl: server.url }));
    const controller = new AbortController();
    // The watches of the tests before are gone first: the count below is of these two alone.
    await waitFor(() => watchers.size === 0, { message: "earlier watches never ended" });
    const before = watchers.size;
    const received: bigint[][] = [[], []];
    const done = received.map(async (revisions) => {
      for await (const message of client.watchUsers({}, { signal: controller.signal })) {
        revisions.push(message.revision);
        if (revisions.length === 3) return;
      }
    });
    await waitFor(() => watchers.size === before + 2, { message: "the watchers never opened" });
    // A handler's own message, changed after it was sent, and sent again.
    const reused = create(WatchUsersResponseSchema, { revision: 1n });
    broadcast(reused);
    await waitFor(() => received.every((revisions) => revisions.length === 1), {
      message: "the first message never arrived",
    });
    reused.revision = 2n;
    broadcast(reused);
    // A response shared by converting its batch once: both streams send the encoding the first
    // one made.
    const shared = convertBatchesOnce(
      (_batch: { revision: bigint }) => [],
      (event: never) => event,
    )({ revision: 3n });
    broadcast(shared as unknown as WatchUsersResponse);
    await Promise.all(done);
    controller.abort();
    for (const revisions of received) assert.deepEqual(revisions, [1n, 2n, 3n]);
    const slot = (shared as { [sharedEncoding]?: SharedEncoding })[sharedEncoding];
    assert.ok(slot?.frame, "the shared message keeps the encoding made for the first stream");
    assert.equal(
      Object.getOwnPropertySymbols({ ...shared }).includes(sharedEncoding),
      false,
      "a copy of a shared message does not take its encoding",
    );
  });

  test("a client that goes away ends the handler: its signal aborts and it is removed", async () => {
    const client = grpcJsClient();
    const before = seen.watchSignals.length;
    const call = (client.watchUsers as (request: object) => grpc.ClientReadableStream<unknown>)({});
    call.on("error", () => {});
    await waitFor(() => seen.watchSignals.length === before + 1, {
      message: "the watch never started",
    });
    const watchersOpen = watchers.size;
    call.cancel();
    const signal = seen.watchSignals[before];
    await waitFor(() => signal?.aborted === true, {
      message: "the handler's signal never aborted",
    });
    assert.equal(ConnectError.from(signal?.reason).code, Code.Canceled);
    await waitFor(() => watchers.size === watchersOpen - 1, { message: "the handler never ended" });
    client.close();
  });

  test("an error before the first message is answered trailers-only", async () => {
    const request = toBinary(
      WatchUsersRequestSchema,
      create(WatchUsersRequestSchema, { startRevision: -1n }),
    );
    const { headers, trailers } = await rawGrpc(
      "/shop.user.v1.UserService/WatchUsers",
      envelope(request),
    );
    assert.equal(headers["grpc-status"], String(Code.InvalidArgument));
    assert.equal(trailers, undefined);
  });
});

const batchPath = "/shop.user.v1.UserService/BatchCreateUsers";
const batchBytes = (name: string) =>
  toBinary(BatchCreateUsersRequestSchema, create(BatchCreateUsersRequestSchema, { name }));

async function* batchOf(names: string[]) {
  for (const name of names) yield { name, email: `${name}@example.com` };
}

describe("client- and bidi-streaming calls on the runtime's path", () => {
  test("a stream whose handler stops reading does not stall the other calls on its connection", async () => {
    const session = http2.connect(`http://${address()}`);
    try {
      const stalled = session.request({
        ":method": "POST",
        ":path": "/shop.user.v1.UserService/BatchCreateUsers",
        "content-type": "application/grpc",
        te: "trailers",
        "x-probe": "stall",
      });
      stalled.on("error", () => {});
      // More than a stream's and a connection's default flow-control window (64 KiB).
      const message = envelope(batchBytes("x".repeat(1_000)));
      for (let i = 0; i < 256; i++) stalled.write(message);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const answered = await new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
        const call = session.request({
          ":method": "POST",
          ":path": getUserPath,
          "content-type": "application/grpc",
          te: "trailers",
        });
        const timer = setTimeout(() => resolve(undefined), 3_000);
        call.on("trailers", (trailers) => {
          clearTimeout(timer);
          resolve(trailers);
        });
        call.on("error", () => {});
        call.resume();
        call.end(envelope(getUserBytes("beside")));
      });
      assert.equal(answered?.["grpc-status"], "0", "the unary call beside it was answered");
      stalled.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });

  test("grpc-js sends BatchCreateUsers three messages and gets the answer, the handler's headers and trailers", async () => {
    const client = grpcJsClient();
    type Outcome = { error: grpc.ServiceError | null; response?: Record<string, unknown> };
    const send = (names: string[]) =>
      new Promise<Outcome & { header?: grpc.Metadata; trailer?: grpc.Metadata }>((resolve) => {
        let header: grpc.Metadata | undefined;
        let outcome: Outcome | undefined;
        let trailer: grpc.Metadata | undefined;
        const done = () => {
          if (outcome && trailer) resolve({ ...outcome, header, trailer });
        };
        const call = (
          client.BatchCreateUsers as (
            metadata: grpc.Metadata,
            callback: (error: grpc.ServiceError | null, response?: Record<string, unknown>) => void,
          ) => grpc.ClientWritableStream<object>
        )(new grpc.Metadata(), (error, response) => {
          outcome = { error, response };
          done();
        });
        call.on("metadata", (metadata: grpc.Metadata) => {
          header = metadata;
        });
        call.on("status", (status: grpc.StatusObject) => {
          trailer = status.metadata;
          done();
        });
        for (const name of names) call.write({ name, email: `${name}@example.com` });
        call.end();
      });
    try {
      const ok = await send(["ann", "bob", "cy"]);
      assert.equal(ok.error, null);
      const users = ok.response?.users as { name: string }[];
      assert.deepEqual(
        users.map((user) => user.name),
        ["ann", "bob", "cy"],
      );
      assert.deepEqual(ok.header?.get("x-count"), ["3"]);
      assert.deepEqual(ok.header?.get("date"), [], "served by the runtime's path");
      assert.deepEqual(ok.trailer?.get("x-trailer"), ["done"]);
      const failed = await send(["ann", "fail", "cy"]);
      assert.equal(failed.error?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(failed.error?.details, "no user may be called fail");
    } finally {
      client.close();
    }
  });

  for (const [name, transport] of [
    [
      "Connect over HTTP/2",
      () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
    ],
    [
      "Connect JSON over HTTP/1.1",
      () =>
        createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false }),
    ],
    [
      "gRPC-web over HTTP/1.1",
      () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }),
    ],
    [
      "gRPC with gzip",
      () =>
        createGrpcTransport({
          baseUrl: server.url,
          sendCompression: compressionGzip,
          compressMinBytes: 0,
        }),
    ],
  ] as const) {
    test(`${name}: BatchCreateUsers gets its answer and headers; an error keeps its code`, async () => {
      const client = createClient(UserService, transport());
      let header: Headers | undefined;
      const answer = await client.batchCreateUsers(batchOf(["ann", "bob", "cy"]), {
        onHeader: (h) => {
          header = h;
        },
      });
      assert.deepEqual(
        answer.users.map((user) => user.name),
        ["ann", "bob", "cy"],
      );
      assert.equal(header?.get("x-count"), "3");
      assert.equal(header?.get("date"), null, "served by the runtime's path");
      const error = await client
        .batchCreateUsers(batchOf(["ann", "fail"]))
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.InvalidArgument);
      assert.equal(error.rawMessage, "no user may be called fail");
    });
  }

  for (const [name, transport] of [
    ["gRPC", () => createGrpcTransport({ baseUrl: server.url })],
    ["Connect", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" })],
    ["gRPC-web", () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" })],
  ] as const) {
    test(`${name} over HTTP/2: TrackOrders answers each message before the next is sent, then ends; an error mid-stream keeps its code`, async () => {
      const client = createClient(OrderService, transport());
      const requests = createRequestStream<{ addOrderIds: string[] }>();
      let header: Headers | undefined;
      const responses = client
        .trackOrders(requests, {
          onHeader: (h) => {
            header = h;
          },
        })
        [Symbol.asyncIterator]();
      requests.push({ addOrderIds: ["a"] });
      const first = await responses.next();
      assert.deepEqual(first.value?.unknownOrderIds, ["a"]);
      assert.equal(first.value?.revision, 1n);
      requests.push({ addOrderIds: ["b", "c"] });
      const second = await responses.next();
      assert.deepEqual(second.value?.unknownOrderIds, ["b", "c"]);
      assert.equal(second.value?.revision, 2n);
      requests.close();
      assert.equal((await responses.next()).done, true);
      assert.equal(header?.get("x-tracking"), "open");
      assert.equal(header?.get("date"), null, "served by the runtime's path");

      const failing = createRequestStream<{ addOrderIds: string[] }>();
      const received: bigint[] = [];
      failing.push({ addOrderIds: ["a"] });
      failing.push({ addOrderIds: ["fail"] });
      const error = await (async () => {
        for await (const response of client.trackOrders(failing)) received.push(response.revision);
      })().catch((e: unknown) => ConnectError.from(e));
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.FailedPrecondition);
      assert.deepEqual(received, [1n]);
    });
  }

  test("a handler that asks for two messages at once gets both", async () => {
    const client = createClient(UserService, createGrpcTransport({ baseUrl: server.url }));
    const answer = await client.batchCreateUsers(batchOf(["ann", "bob", "cy"]), {
      headers: { "x-probe": "parallel" },
      timeoutMs: 5_000,
    });
    assert.deepEqual(
      answer.users.map((user) => user.name),
      ["ann", "bob", "cy"],
    );
  });

  test("a bidi stream over HTTP/1.1 is refused (505), as HTTP/1.1 cannot carry it both ways", async () => {
    const response = await fetch(`${server.url}/shop.order.v1.OrderService/TrackOrders`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
      body: envelope(Buffer.alloc(0)),
    });
    await response.body?.cancel();
    assert.equal(response.status, 505);
  });

  test("150 compressed watch calls reset as soon as sent leave no handler running and no stream slot taken", async () => {
    // More calls than a client may hold streams (100), each reset as soon as it is sent.
    const request = gzipSync(
      toBinary(WatchUsersRequestSchema, create(WatchUsersRequestSchema, {})),
    );
    const session = http2.connect(`http://${address()}`);
    try {
      for (let round = 0; round < 150; round++) {
        const stream = session.request({
          ":method": "POST",
          ":path": "/shop.user.v1.UserService/WatchUsers",
          "content-type": "application/grpc",
          "grpc-encoding": "gzip",
          te: "trailers",
        });
        stream.on("error", () => {});
        stream.end(envelope(request, 1));
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    } finally {
      session.close();
    }
    await waitFor(() => watchers.size === 0, { message: "watches were left open" });
    // A watch of this client is still let in.
    await assertWatchStreams(
      createClient(UserService, createGrpcTransport({ baseUrl: server.url })),
    );
  });

  test("a bidi stream whose client goes away ends its handler", async () => {
    const client = createClient(OrderService, createGrpcTransport({ baseUrl: server.url }));
    const controller = new AbortController();
    const requests = createRequestStream<{ addOrderIds: string[] }>();
    const responses = client
      .trackOrders(requests, { signal: controller.signal })
      [Symbol.asyncIterator]();
    requests.push({ addOrderIds: ["a"] });
    await responses.next();
    assert.equal(seen.tracking, 1);
    controller.abort();
    await waitFor(() => seen.tracking === 0, { message: "the handler never ended" });
  });

  for (const [name, body, code] of [
    [
      "a message announced larger than the limit",
      Buffer.concat([envelope(batchBytes("a")), Buffer.from([0, 0, 0, 8, 0])]),
      "8",
    ],
    ["a body ending inside a message", envelope(batchBytes("a")).subarray(0, 7), "3"],
    ["a message flagged compressed without a grpc-encoding", envelope(batchBytes("a"), 1), "13"],
    ["bytes that are not the message", envelope(Buffer.from([0x0a, 0xff, 0xff])), "3"],
  ] as const) {
    test(`a client stream with ${name} fails with grpc-status ${code}, on the runtime's path`, async () => {
      const { headers, trailers } = await rawGrpc(batchPath, body);
      assert.equal(headers.date, undefined, "answered by the runtime's path");
      assert.equal(headers["grpc-status"] ?? trailers?.["grpc-status"], code);
    });
  }
});
