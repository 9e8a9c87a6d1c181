// With a certificate configured, the same port that serves cleartext HTTP/1.1 and h2c also serves
// TLS, negotiating h2 or http/1.1 by ALPN, with the same limits.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@shop/api/grpc/health/v1/health_pb";
import type { RunningService } from "@shop/mesh";
import { createTestDatabase, startTestService, type TestDatabase, waitFor } from "@shop/testing";
import { usersService } from "../../../services/users/src/app.ts";

const dir = mkdtempSync(path.join(tmpdir(), "mesh-tls-"));
const certFile = path.join(dir, "cert.pem");
const keyFile = path.join(dir, "key.pem");
execFileSync(
  "openssl",
  [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ],
  { stdio: "ignore" },
);
const ca = readFileSync(certFile);

let database: TestDatabase;
let service: RunningService;
before(async () => {
  database = await createTestDatabase();
  service = await startTestService(usersService, database.url, {
    TLS_CERT_FILE: certFile,
    TLS_KEY_FILE: keyFile,
  });
});
after(async () => {
  await service.stop(100);
  await database.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function healthOver(baseUrl: string) {
  const health = createClient(Health, createGrpcTransport({ baseUrl, nodeOptions: { ca } }));
  return (await health.check({})).status;
}

test("gRPC over TLS negotiates h2 by ALPN on the service port", async () => {
  const status = await healthOver(`https://localhost:${service.server.port}`);
  assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
});

test("HTTPS with HTTP/1.1 is served on the same port", async () => {
  const { protocol, body } = await new Promise<{ protocol: string | false | null; body: string }>(
    (resolve, reject) => {
      const req = https.get(
        {
          host: "localhost",
          port: service.server.port,
          path: "/healthz",
          ca,
          ALPNProtocols: ["http/1.1"],
        } as https.RequestOptions,
        (res) => {
          const protocol = (res.socket as TLSSocket).alpnProtocol;
          let body = "";
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () => resolve({ protocol, body }));
        },
      );
      req.on("error", reject);
    },
  );
  assert.equal(protocol, "http/1.1");
  assert.match(body, /alive/);
});

test("cleartext h2c keeps working next to TLS", async () => {
  const status = await healthOver(`http://127.0.0.1:${service.server.port}`);
  assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
});

test("over TLS, an HTTP/1.1 client that trickles its headers is closed after HEADERS_TIMEOUT_MS; a prompt one is served", async () => {
  const slowDatabase = await createTestDatabase();
  const strict = await startTestService(usersService, slowDatabase.url, {
    TLS_CERT_FILE: certFile,
    TLS_KEY_FILE: keyFile,
    HEADERS_TIMEOUT_MS: "1000",
  });
  try {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port: strict.server.port,
      ca,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    });
    await once(socket, "secureConnect");
    assert.equal(socket.alpnProtocol, "http/1.1");
    const openedAt = Date.now();
    const request = "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: aaaaaaaaaaaaaaaaaaaa";
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < request.length && socket.writable) socket.write(request[sent++] ?? "");
    }, 100);
    socket.on("error", () => {});
    const closed = await Promise.race([
      // (not events.once: the server's close reaches this side as a reset, an 'error' event)
      new Promise<true>((resolve) => socket.once("close", () => resolve(true))),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000)),
    ]);
    clearInterval(trickle);
    socket.destroy();
    assert.ok(closed, "the server closed the slow connection within 5 s");
    const lived = Date.now() - openedAt;
    assert.ok(lived >= 800 && lived < 5_000, `the slow connection lived ${lived} ms`);
    // A client that sends its request at once is answered, also after the timeout has passed.
    const prompt = tlsConnect({
      host: "127.0.0.1",
      port: strict.server.port,
      ca,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
    });
    await once(prompt, "secureConnect");
    prompt.write("GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
    const [answer] = (await once(prompt, "data")) as [Buffer];
    assert.match(answer.toString(), /^HTTP\/1\.1 200/);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(prompt.destroyed, false, "a connection that sent its request is kept");
    prompt.destroy();
  } finally {
    await strict.stop(100);
    await slowDatabase.drop();
  }
});

test("over TLS, an HTTP/2 connection in use outlives IDLE_TIMEOUT_MS, and one left idle is closed after it", async () => {
  const idleDatabase = await createTestDatabase();
  const idleTimeoutMs = 600;
  const idling = await startTestService(usersService, idleDatabase.url, {
    TLS_CERT_FILE: certFile,
    TLS_KEY_FILE: keyFile,
    IDLE_TIMEOUT_MS: String(idleTimeoutMs),
  });
  const session = http2.connect(`https://localhost:${idling.server.port}`, { ca });
  try {
    session.on("error", () => {});
    let goawayAt: number | undefined;
    session.once("goaway", () => {
      goawayAt = Date.now();
    });
    const get = async () => {
      const req = session.request({ ":path": "/healthz" });
      req.resume();
      await once(req, "end");
    };
    // A request every quarter of the timeout, for three timeouts.
    const busyUntil = Date.now() + idleTimeoutMs * 3;
    while (Date.now() < busyUntil) {
      await get();
      await new Promise((resolve) => setTimeout(resolve, idleTimeoutMs / 4));
    }
    assert.equal(goawayAt, undefined, "the connection in use was closed");
    const idleSince = Date.now();
    await waitFor(() => goawayAt !== undefined, {
      timeoutMs: idleTimeoutMs * 4,
      message: "the idle connection was never closed",
    });
    const idled = (goawayAt ?? 0) - idleSince;
    assert.ok(idled >= idleTimeoutMs - 200, `closed after ${idled} ms of idleness`);
  } finally {
    session.destroy();
    await idling.stop(100);
    await idleDatabase.drop();
  }
});
