// Slowloris: 500 connections that send their request headers a byte at a time (HTTP/1.1; HTTP/2
// after its preface; the HTTP/2 preface itself) do not keep other clients from being served, and
// the server closes each of them once HEADERS_TIMEOUT_MS has passed, however steadily it trickles.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { UserService } from "@shop/api/shop/user/v1/user_service_pb";
import {
  createTestDatabase,
  readMetric,
  type ServiceProcess,
  startServiceProcess,
  type TestDatabase,
  waitFor,
} from "@shop/testing";
import { grpcHealthStatus } from "./support/shop.ts";

const headersTimeoutMs = 2_000;
const tickMs = 200;

let database: TestDatabase;
let users: ServiceProcess;
before(async () => {
  database = await createTestDatabase();
  users = await startServiceProcess("users", {
    DATABASE_URL: database.url,
    AUTH: "off",
    HEADERS_TIMEOUT_MS: String(headersTimeoutMs),
  });
});
after(async () => {
  await users?.kill();
  await database?.drop();
});

type Kind = "http/1.1 headers" | "http/2 headers" | "http/2 preface";

/** One slow client: when it connected, and when and how the server ended it. */
interface SlowConnection {
  kind: Kind;
  openedAt: number;
  closedAt?: number;
  received: Buffer;
  socket: Socket;
}

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const emptySettings = Buffer.from([0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
const settingsAck = Buffer.from([0, 0, 0, 0x04, 0x01, 0, 0, 0, 0]);

/** A valid HEADERS frame for stream 1 (POST, http, /, and a 200-byte header), to be trickled. */
function headersFrame(): Buffer {
  const name = Buffer.from("x-slow");
  const block = Buffer.concat([
    Buffer.from([0x83, 0x86, 0x84, 0x00, name.length]),
    name,
    // A 200-byte value: 7-bit prefix 127, then 73 as the continuation.
    Buffer.from([0x7f, 200 - 127]),
    Buffer.alloc(200, 0x61),
  ]);
  const header = Buffer.alloc(9);
  header.writeUIntBE(block.length, 0, 3);
  header.writeUInt8(0x01, 3);
  header.writeUInt8(0x04, 4);
  header.writeUInt32BE(1, 5);
  return Buffer.concat([header, block]);
}

const http1Request = Buffer.from(
  `POST /shop.user.v1.UserService/GetUser HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-slow: ${"a".repeat(2_000)}\r\n\r\n`,
);

/** Opens a connection that sends its request one byte every `tickMs`, never finishing in time. */
function openSlow(port: number, kind: Kind, onClose: (c: SlowConnection) => void): SlowConnection {
  const socket = connectTcp(port, "127.0.0.1");
  const connection: SlowConnection = {
    kind,
    openedAt: performance.now(),
    received: Buffer.alloc(0),
    socket,
  };
  let pending: Buffer;
  if (kind === "http/1.1 headers") {
    pending = http1Request;
  } else if (kind === "http/2 headers") {
    socket.write(Buffer.concat([preface, emptySettings]));
    pending = headersFrame();
  } else {
    pending = Buffer.concat([preface, emptySettings]);
  }
  // A well-behaved HTTP/2 client acknowledges the server's SETTINGS; this one does too, before it
  // starts trickling its HEADERS frame (an acknowledgement written into the middle of that frame
  // would be a protocol error, and the server would rightly close the connection at once).
  let acked = kind !== "http/2 headers";
  let sent = 0;
  const trickle = setInterval(() => {
    if (acked && sent < pending.length && socket.writable) {
      socket.write(pending.subarray(sent, ++sent));
    }
  }, tickMs);
  socket.on("data", (chunk: Buffer) => {
    connection.received = Buffer.concat([connection.received, chunk]);
    if (!acked) {
      acked = true;
      socket.write(settingsAck);
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    clearInterval(trickle);
    connection.closedAt = performance.now();
    onClose(connection);
  });
  return connection;
}

function openFileLimit(): number {
  return Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
}

test("500 slow-header connections neither starve other clients nor outlive HEADERS_TIMEOUT_MS", async () => {
  // This process and the service each hold one descriptor per connection; both inherit this limit.
  const limit = openFileLimit();
  const target = Math.min(500, limit - 200);
  assert.ok(target >= 100, `ulimit -n is ${limit}: too low for this test`);
  if (target < 500) console.log(`# ulimit -n is ${limit}: ${target} slow connections`);

  const connect = createConnectTransport({ baseUrl: users.url, httpVersion: "1.1" });
  const transports: [string, Transport][] = [
    ["connect", connect],
    ["grpc", createGrpcTransport({ baseUrl: users.url })],
  ];
  const { user } = await createClient(UserService, connect).createUser({
    name: "Patient Client",
    email: "patient@example.com",
  });
  assert.ok(user);
  const handlesBefore = await readMetric(users.url, "nodejs_active_handles_total");

  const kinds: Kind[] = ["http/1.1 headers", "http/2 headers", "http/2 preface"];
  const all: SlowConnection[] = [];
  let open = 0;
  let attacking = true;
  const start = (kind: Kind) => {
    open++;
    all.push(
      openSlow(users.port, kind, (closed) => {
        open--;
        // The attack goes on: each connection the server closes is replaced at once.
        if (attacking) start(closed.kind);
      }),
    );
  };
  for (let i = 0; i < target; i++) start(kinds[i % kinds.length] as Kind);
  // Every slow connection has connected before the first normal call.
  await waitFor(() => all.every((c) => !c.socket.connecting), { timeoutMs: 10_000 });

  const latencies: number[] = [];
  const openDuring: number[] = [];
  for (let i = 0; i < 50; i++) {
    const [name, transport] = transports[i % 2] as [string, Transport];
    const started = performance.now();
    const { user: found } = await createClient(UserService, transport).getUser(
      { id: user.id },
      { timeoutMs: 5_000 },
    );
    latencies.push(performance.now() - started);
    openDuring.push(open);
    assert.equal(found?.id, user.id, `call ${i} over ${name}`);
  }
  attacking = false;

  const slowest = Math.max(...latencies);
  console.log(
    `# 50 calls during the attack: slowest ${Math.round(slowest)} ms; slow connections open: ${Math.min(...openDuring)}..${Math.max(...openDuring)}; opened in all: ${all.length}`,
  );
  assert.ok(slowest < 1_000, `a call took ${Math.round(slowest)} ms`);
  assert.ok(
    Math.min(...openDuring) >= target * 0.9,
    `only ${Math.min(...openDuring)} of ${target} slow connections were open during the calls`,
  );

  // The server, not the client, ends each one: at HEADERS_TIMEOUT_MS, while it still trickles.
  await waitFor(() => all.every((c) => c.closedAt !== undefined), {
    timeoutMs: headersTimeoutMs + 10_000,
  }).catch((error: unknown) => {
    const left = all.filter((c) => c.closedAt === undefined);
    const kinds = [...new Set(left.map((c) => c.kind))].join(", ");
    throw new Error(`${left.length} slow connections still open (${kinds})`, { cause: error });
  });
  for (const kind of kinds) {
    const ofKind = all.filter((c) => c.kind === kind);
    const lifetimes = ofKind.map((c) => (c.closedAt ?? 0) - c.openedAt);
    const shortest = Math.min(...lifetimes);
    const longest = Math.max(...lifetimes);
    console.log(
      `# ${kind}: ${ofKind.length} closed after ${Math.round(shortest)}..${Math.round(longest)} ms`,
    );
    assert.ok(
      shortest >= headersTimeoutMs - 250,
      `${kind}: one closed after ${Math.round(shortest)} ms`,
    );
    assert.ok(longest <= headersTimeoutMs + 3_000, `${kind}: one lived ${Math.round(longest)} ms`);
  }
  for (const c of all.filter((c) => c.kind === "http/1.1 headers")) {
    assert.match(c.received.toString("latin1"), /^HTTP\/1\.1 408 /);
  }
  for (const c of all.filter((c) => c.kind === "http/2 headers")) {
    // A GOAWAY frame (type 7) before the close.
    assert.ok(c.received.includes(Buffer.from([0x07, 0x00, 0x00, 0x00, 0x00, 0x00])), "no GOAWAY");
  }

  // The service let go of the sockets too, and serves as before.
  await waitFor(
    async () => (await readMetric(users.url, "nodejs_active_handles_total")) <= handlesBefore + 10,
    { timeoutMs: 5_000, message: "the service still holds the slow connections' sockets" },
  );
  assert.equal(await grpcHealthStatus(users.url), 1);
});
