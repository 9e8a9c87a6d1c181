// HTTP/1.1 connections between requests: a request that takes longer than the headers timeout
// keeps its connection, a kept-alive connection that trickles its next request is closed after the
// keep-alive and headers timeouts without an answer, and a closing server ends idle connections at
// once and busy ones after their answer.
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as connectTcp, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, defaultLimits, type Limits, type Server, serve } from "../src/index.ts";

const headersTimeoutMs = 500;
const keepAliveTimeoutMs = 5_000;
const readinessMs = 1_200;

/** A server with no RPCs whose /readyz answers after `readyAfterMs`. */
function serveSlowReadiness(readyAfterMs: number, limits: Limits): Promise<Server> {
  return serve({
    name: "http1-test",
    services: [],
    routes: () => {},
    port: 0,
    host: "127.0.0.1",
    limits,
    corsOrigins: [],
    logger: createLogger("http1-test", "silent"),
    readiness: async () => {
      await sleep(readyAfterMs);
      return { ok: true };
    },
  });
}

let server: Server;
before(async () => {
  // /readyz answers after longer than the headers timeout.
  server = await serveSlowReadiness(readinessMs, { ...defaultLimits, headersTimeoutMs });
});
after(() => server.close(100));

/** A connection, with everything it has received so far and when the server closed it. */
function open(port = server.port): {
  socket: Socket;
  received: () => string;
  closed: Promise<number>;
} {
  const socket = connectTcp(port, "127.0.0.1");
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now())));
  return { socket, received: () => text, closed };
}

async function answered(received: () => string, count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((received().match(/HTTP\/1\.1 \d{3}/g) ?? []).length < count) {
    assert.ok(Date.now() < deadline, `expected ${count} answers, got: ${received()}`);
    await sleep(10);
  }
}

test("a request slower than the headers timeout keeps its connection, which serves the next one", async () => {
  const { socket, received, closed } = open();
  await once(socket, "connect");
  socket.write("GET /readyz HTTP/1.1\r\nhost: localhost\r\n\r\n");
  await answered(received, 1);
  assert.match(received(), /^HTTP\/1\.1 200/);
  // Idle for longer than the headers timeout, but within the keep-alive timeout.
  await sleep(headersTimeoutMs * 2);
  socket.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
  await answered(received, 2);
  const ended = await Promise.race([closed, sleep(100).then(() => undefined)]);
  assert.equal(ended, undefined, "the connection is still open");
  socket.destroy();
});

test("a kept-alive connection that trickles its next request is closed after the keep-alive and headers timeouts, unanswered", async () => {
  const { socket, received, closed } = open();
  await once(socket, "connect");
  socket.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
  await answered(received, 1);
  const answeredAt = Date.now();
  const answer = received();
  const next = `GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ${"a".repeat(200)}`;
  let sent = 0;
  const trickle = setInterval(() => {
    if (socket.writable) socket.write(next[sent++ % next.length] ?? "a");
  }, 100);
  const closedAt = await closed;
  clearInterval(trickle);
  const lived = closedAt - answeredAt;
  const limit = keepAliveTimeoutMs + headersTimeoutMs;
  assert.ok(lived >= limit - 50 && lived < limit + 1_000, `closed ${lived} ms after its answer`);
  assert.equal(received(), answer, "nothing was sent after the first answer");
});

test("a closing server ends an idle HTTP/1.1 connection at once and a busy one after its answer", async () => {
  const closing = await serveSlowReadiness(300, defaultLimits);
  const connect = async () => {
    const connection = open(closing.port);
    await once(connection.socket, "connect");
    return connection;
  };
  const idle = await connect();
  const busy = await connect();
  idle.socket.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
  await answered(idle.received, 1);
  busy.socket.write("GET /readyz HTTP/1.1\r\nhost: localhost\r\n\r\n");
  await sleep(50);
  const started = Date.now();
  const done = closing.close(2_000);
  const idleClosedAt = await idle.closed;
  const busyClosedAt = await busy.closed;
  await done;
  // close() waits a moment (for health watchers) before it closes connections.
  assert.ok(idleClosedAt - started < 250, `the idle one closed after ${idleClosedAt - started} ms`);
  assert.match(busy.received(), /^HTTP\/1\.1 \d{3}/, "the busy one got its answer");
  assert.ok(busyClosedAt >= idleClosedAt);
});
