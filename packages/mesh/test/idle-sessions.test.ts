// IDLE_TIMEOUT_MS: serve() closes an HTTP/2 connection that has carried nothing for that long
// (GOAWAY), and keeps one that is in use open however long it lives.
import assert from "node:assert/strict";
import { once } from "node:events";
import * as http2 from "node:http2";
import { after, before, test } from "node:test";
import pino from "pino";
import { defaultLimits, type Server, serve } from "../src/index.ts";

const idleTimeoutMs = 400;

let server: Server;
before(async () => {
  server = await serve({
    name: "idle-test",
    services: [],
    routes: () => {},
    port: 0,
    host: "127.0.0.1",
    limits: { ...defaultLimits, idleTimeoutMs },
    corsOrigins: [],
    logger: pino({ level: "silent" }),
    readiness: async () => ({}),
  });
});
after(() => server.close(100));

/** GET `path` on `session`, resolving with the status once the answer has been read. */
async function get(session: http2.ClientHttp2Session, path: string): Promise<number> {
  const req = session.request({ ":path": path });
  const [headers] = (await once(req, "response")) as [http2.IncomingHttpHeaders];
  req.resume();
  await once(req, "end");
  return Number(headers[":status"]);
}

/**
 * Milliseconds from now until `session` receives GOAWAY or closes, whichever comes first; Infinity
 * if neither has happened within three timeouts.
 */
function untilClosed(session: http2.ClientHttp2Session): Promise<number> {
  const start = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), idleTimeoutMs * 3);
    const done = () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    };
    session.once("goaway", done);
    session.once("close", done);
  });
}

test("a connection that carries nothing for IDLE_TIMEOUT_MS is closed", async () => {
  const session = http2.connect(server.url);
  session.on("error", () => {});
  assert.equal(await get(session, "/healthz"), 200);
  const closedAfter = await untilClosed(session);
  session.destroy();
  assert.ok(closedAfter >= idleTimeoutMs - 50, `closed after ${closedAfter} ms, too early`);
  assert.ok(closedAfter < idleTimeoutMs * 3, `closed after ${closedAfter} ms, too late`);
});

test("a connection in use is kept open past IDLE_TIMEOUT_MS", async () => {
  const session = http2.connect(server.url);
  session.on("error", () => {});
  let closed = false;
  session.once("goaway", () => {
    closed = true;
  });
  // A request every quarter of the timeout, for three timeouts.
  for (let elapsed = 0; elapsed < idleTimeoutMs * 3; elapsed += idleTimeoutMs / 4) {
    assert.equal(await get(session, "/healthz"), 200);
    assert.equal(closed, false, `closed while in use, after ${elapsed} ms`);
    await new Promise((resolve) => setTimeout(resolve, idleTimeoutMs / 4));
  }
  // Then left alone, it is closed like any other.
  const closedAfter = await untilClosed(session);
  session.destroy();
  assert.ok(closedAfter < idleTimeoutMs * 3, `closed after ${closedAfter} ms, too late`);
});
