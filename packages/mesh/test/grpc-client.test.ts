// The outbound clients' unary gRPC calls (src/client/grpc-unary.ts, through createUpstream) against a
// server nobody here wrote (@grpc/grpc-js): answers with their headers and trailers, errors with
// their codes, messages and metadata, deadlines sent and kept, cancellation, a server that
// resets the stream, and an address where nothing listens.
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { UserSchema } from "@shop/api/shop/user/v1/user_pb";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import { createGrpcUnaryCaller } from "../src/client/grpc-unary.ts";
import { createUpstream } from "../src/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

// What the server saw, for the tests to look at.
const seen = {
  metadata: [] as grpc.Metadata[],
  deadlines: [] as number[],
  cancelled: [] as string[],
};

type Call = grpc.ServerUnaryCall<{ id: string }, unknown>;
type Callback = grpc.sendUnaryData<unknown>;

function getUser(call: Call, callback: Callback): void {
  seen.metadata.push(call.metadata);
  const deadline = call.getDeadline();
  seen.deadlines.push(deadline instanceof Date ? deadline.getTime() : Number(deadline));
  switch (call.request.id) {
    case "missing": {
      const metadata = new grpc.Metadata();
      metadata.set("x-why", "absent");
      callback({
        code: grpc.status.NOT_FOUND,
        details: "no user «missing» here: 100% sure",
        metadata,
      });
      return;
    }
    case "slow": {
      const timer = setTimeout(() => callback(null, { user: { id: "slow" } }), 5_000);
      call.on("cancelled", () => {
        clearTimeout(timer);
        seen.cancelled.push("slow");
      });
      return;
    }
    case "detailed": {
      // The status with an error detail, as a gRPC server sends it: google.rpc.Status, binary.
      const metadata = new grpc.Metadata();
      const status = setTrailerStatus(
        new Headers(),
        new ConnectError("refused, with a reason", Code.FailedPrecondition, undefined, [
          { desc: UserSchema, value: { id: "reason-1", name: "the reason" } },
        ]),
      ).get("grpc-status-details-bin");
      metadata.set("grpc-status-details-bin", Buffer.from(status ?? "", "base64"));
      callback({
        code: grpc.status.FAILED_PRECONDITION,
        details: "refused, with a reason",
        metadata,
      });
      return;
    }
    case "large":
      callback(null, { user: { id: "large", name: "x".repeat(4_000) } });
      return;
    case "reset":
      // The server goes away in the middle of the call.
      (call as unknown as { call: { stream: { close(code: number): void } } }).call.stream.close(2);
      return;
    default: {
      const headers = new grpc.Metadata();
      headers.set("x-served-by", "grpc-js");
      call.sendMetadata(headers);
      const trailers = new grpc.Metadata();
      trailers.set("x-trailer", "done");
      callback(null, { user: { id: call.request.id, name: `user ${call.request.id}` } }, trailers);
    }
  }
}

let server: grpc.Server;
let port: number;
before(async () => {
  const definition = protoLoader.loadSync("shop/user/v1/user_service.proto", {
    includeDirs: [path.join(root, "proto")],
    keepCase: false,
    longs: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    shop: { user: { v1: { UserService: { service: grpc.ServiceDefinition } } } };
  };
  server = new grpc.Server();
  server.addService(loaded.shop.user.v1.UserService.service, { getUser });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
});
after(() => server.forceShutdown());

const upstream = (
  options: { credentials?: () => Promise<string>; maxMessageBytes?: number } = {},
) =>
  createUpstream(UserService, {
    name: "users",
    baseUrl: `http://127.0.0.1:${port}`,
    retry: { maxAttempts: 1 },
    ...options,
  }).client;

test("an answer comes with the server's headers and trailers, and the caller's metadata goes", async () => {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  const response = await upstream({ credentials: async () => "token-1" }).getUser(
    { id: "u1" },
    {
      headers: { "x-probe": "p1" },
      onHeader: (h) => {
        header = h;
      },
      onTrailer: (t) => {
        trailer = t;
      },
    },
  );
  assert.equal(response.user?.id, "u1");
  assert.equal(response.user?.name, "user u1");
  assert.equal(header?.get("x-served-by"), "grpc-js");
  assert.equal(trailer?.get("x-trailer"), "done");
  const metadata = seen.metadata.at(-1);
  assert.deepEqual(metadata?.get("x-probe"), ["p1"]);
  assert.deepEqual(metadata?.get("authorization"), ["Bearer token-1"]);
});

test("an error keeps its code, its message (percent-encoded on the wire) and its metadata", async () => {
  const error = await upstream()
    .getUser({ id: "missing" })
    .then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
  assert.equal(error.code, Code.NotFound);
  assert.equal(error.rawMessage, "no user «missing» here: 100% sure");
  assert.equal(error.metadata.get("x-why"), "absent");
});

test("an error's details (grpc-status-details-bin) arrive decoded, by type", async () => {
  const error = await upstream()
    .getUser({ id: "detailed" })
    .then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
  assert.equal(error.code, Code.FailedPrecondition);
  assert.equal(error.rawMessage, "refused, with a reason");
  const [reason] = error.findDetails(UserSchema);
  assert.equal(reason?.id, "reason-1");
  assert.equal(reason?.name, "the reason");
  assert.equal(error.metadata.get("grpc-status-details-bin"), null, "not left in the metadata");
});

test("an answer larger than the client's message limit fails with resource_exhausted", async () => {
  const error = await upstream({ maxMessageBytes: 1_024 })
    .getUser({ id: "large" })
    .then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
  assert.equal(error.code, Code.ResourceExhausted);
  assert.match(error.rawMessage, /larger than configured readMaxBytes 1024/);
  // The same answer within the limit (the default, 4 MiB) arrives whole.
  const answer = await upstream().getUser({ id: "large" });
  assert.equal(answer.user?.name.length, 4_000);
});

test("a status message that is not valid percent-encoding keeps its code and arrives as sent", async () => {
  // grpc-js encodes its messages properly; a hand-written server need not.
  const sloppy = http2.createServer((_req, res) => {
    res.stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(Code.FailedPrecondition),
        "grpc-message": "100%",
      },
      { endStream: true },
    );
  });
  await new Promise<void>((resolve) => sloppy.listen(0, "127.0.0.1", resolve));
  const { port: sloppyPort } = sloppy.address() as AddressInfo;
  try {
    const error = await createUpstream(UserService, {
      name: "sloppy",
      baseUrl: `http://127.0.0.1:${sloppyPort}`,
      retry: { maxAttempts: 1 },
    })
      .client.getUser({ id: "u1" })
      .then(
        () => assert.fail("expected an error"),
        (e: unknown) => ConnectError.from(e),
      );
    assert.equal(error.code, Code.FailedPrecondition);
    assert.equal(error.rawMessage, "100%");
  } finally {
    sloppy.close();
  }
});

test("the deadline goes to the server as grpc-timeout, and the call ends on time, cancelled there", async () => {
  const started = Date.now();
  const error = await upstream()
    .getUser({ id: "slow" }, { timeoutMs: 300 })
    .then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
  const took = Date.now() - started;
  assert.equal(error.code, Code.DeadlineExceeded);
  assert.ok(took < 2_000, `ended after ${took} ms`);
  const deadline = seen.deadlines.at(-1) ?? 0;
  assert.ok(
    Math.abs(deadline - (started + 300)) < 250,
    `the server's deadline was ${deadline - started} ms after the call`,
  );
  await waitUntil(() => seen.cancelled.length > 0);
});

test("an aborted signal cancels the call at the server", async () => {
  const before = seen.cancelled.length;
  const controller = new AbortController();
  const call = upstream().getUser({ id: "slow" }, { signal: controller.signal, timeoutMs: 10_000 });
  setTimeout(() => controller.abort(), 100);
  const error = await call.then(
    () => assert.fail("expected an error"),
    (e: unknown) => ConnectError.from(e),
  );
  assert.equal(error.code, Code.Canceled);
  await waitUntil(() => seen.cancelled.length > before);
});

test("a stream the server resets ends the call with the reset's code, before the deadline", async () => {
  const error = await upstream()
    .getUser({ id: "reset" }, { timeoutMs: 5_000 })
    .then(
      () => assert.fail("expected an error"),
      (e: unknown) => ConnectError.from(e),
    );
  // RST_STREAM INTERNAL_ERROR is internal, as the gRPC spec maps it.
  assert.equal(error.code, Code.Internal, Code[error.code]);
});

test("an address where nothing listens is unavailable, with the connection error as its cause", async () => {
  const closed = createUpstream(UserService, {
    name: "nowhere",
    baseUrl: "http://127.0.0.1:1",
    retry: { maxAttempts: 1 },
  }).client;
  const error = await closed.getUser({ id: "u1" }).then(
    () => assert.fail("expected an error"),
    (e: unknown) => ConnectError.from(e),
  );
  assert.equal(error.code, Code.Unavailable);
});

test("the deadline and the signal also bound the wait for a connection", async () => {
  // A connection that never opens (a peer that drops the handshake, say).
  const neverConnects = {
    request: () => new Promise(() => {}),
    notifyResponseByteRead: () => {},
  } as unknown as Http2SessionManager;
  const call = createGrpcUnaryCaller({
    baseUrl: "http://10.0.0.1:1",
    sessionManager: neverConnects,
    maxMessageBytes: 1_024,
  });
  const getUser = UserService.method.getUser;
  const started = Date.now();
  const late = await call(getUser, undefined, 150, new Headers(), { id: "u1" }).then(
    () => assert.fail("expected an error"),
    (e: unknown) => ConnectError.from(e),
  );
  assert.equal(late.code, Code.DeadlineExceeded);
  assert.ok(Date.now() - started < 1_000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new ConnectError("the caller left", Code.Canceled)), 50);
  const cancelled = await call(getUser, controller.signal, undefined, new Headers(), {
    id: "u1",
  }).then(
    () => assert.fail("expected an error"),
    (e: unknown) => ConnectError.from(e),
  );
  assert.equal(cancelled.code, Code.Canceled);
});

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail("the server never saw the cancellation");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
