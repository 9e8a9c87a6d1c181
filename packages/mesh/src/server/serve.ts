import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { DescService, JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import type { ConnectRouter, ContextKey, ContextValues, Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { Health } from "@shop/api/grpc/health/v1/health_pb";
import { StatsService } from "@shop/api/shop/mesh/v1/stats_service_pb";
import { TapService } from "@shop/api/shop/mesh/v1/tap_service_pb";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import { createContractValidator } from "../contract/contract-rules.ts";
import {
  type AuthOptions,
  authenticateHttp,
  createAuthGate,
  createTokenExpiryInterceptor,
} from "../interceptors/auth.ts";
import { createCallContextInterceptor } from "../interceptors/call-context.ts";
import { createErrorInterceptor } from "../interceptors/errors.ts";
import { createShutdownInterceptor } from "../interceptors/shutdown.ts";
import { createStreamLimitInterceptor, peerKey } from "../interceptors/stream-limit.ts";
import { createValidationInterceptor } from "../interceptors/validation.ts";
import { observeCalls } from "../observability/call-observers.ts";
import { createMetrics, type Metrics, processRegistry } from "../observability/metrics.ts";
import { registryOf } from "../observability/redact.ts";
import { createRequestStats } from "../observability/stats.ts";
import { createTap } from "../observability/tap.ts";
import { createServerTracingInterceptor } from "../observability/tracing.ts";
import { createServingPath, type ServingPath } from "../protocol/serving-path.ts";
import { applyCors, corsGrant } from "./cors.ts";
import { createHealthState, type HealthState, ServingStatus } from "./health.ts";
import { Http1Connections } from "./http1-connections.ts";
import { watchIdleSessions } from "./idle-sessions.ts";
import { registerReflection } from "./reflection.ts";

/** Resource limits of a server; every one is configurable (see `limitsFromEnv`). */
export interface Limits {
  /** Largest message accepted, in bytes (larger: resource_exhausted). */
  maxMessageBytes: number;
  /**
   * Largest message sent, in bytes (larger: the call fails with resource_exhausted). Apart from
   * `maxMessageBytes`, as in grpc-go: an answer may rightly be larger than the request it answers.
   */
  maxSendMessageBytes: number;
  /** Concurrent streams one HTTP/2 connection may open. */
  maxConcurrentStreams: number;
  /** Largest request header block, in bytes. */
  maxHeaderBytes: number;
  /** Time a client has to send its request headers, in milliseconds. */
  headersTimeoutMs: number;
  /** A connection with no traffic for this long is closed, in milliseconds. */
  idleTimeoutMs: number;
  /** Largest timeout a client may ask for, in milliseconds. */
  maxTimeoutMs: number;
  /** Streams (watches) one client may hold open at once (more: resource_exhausted). */
  maxStreamsPerClient: number;
}

/** The contract's default limits. */
export const defaultLimits: Limits = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxSendMessageBytes: 4 * 1024 * 1024,
  maxConcurrentStreams: 256,
  maxHeaderBytes: 128 * 1024,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
  maxTimeoutMs: 5 * 60_000,
  maxStreamsPerClient: 100,
};

/** What `/readyz` reports: ready only when every check passes. */
export type ReadinessCheck = () => Promise<Record<string, boolean>>;

/** How to serve one service. */
export interface ServeOptions {
  /** Short service name used in logs and metrics ("users"). */
  name: string;
  /** The application's services, for reflection, health and the check of their requests. */
  services: readonly DescService[];
  /** Adds the application's handlers. */
  routes: (router: ConnectRouter) => void;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Address to bind; all interfaces when absent. */
  host?: string;
  /** PEM files; when given, TLS (with ALPN h2 and http/1.1) is served on the same port as well. */
  tls?: {
    certFile: string;
    keyFile: string;
    /**
     * The authority (PEM file) that signs client certificates; when given, a TLS client without a
     * certificate it signed is refused during the handshake.
     */
    clientCaFile?: string;
  };
  limits: Limits;
  /**
   * On close, how long to report not ready (`/readyz` 503, health NOT_SERVING) while still serving
   * every call, so that an edge or client balancer polling readiness takes this replica out before
   * it stops answering; 0 (the default) where something else waits first (a Kubernetes preStop).
   */
  drainMs?: number;
  /** Browser origins allowed by CORS (the dashboard). */
  corsOrigins: readonly string[];
  logger: Logger;
  /** Readiness checks (database reachable, migrations applied). */
  readiness: ReadinessCheck;
  /**
   * How Connect's JSON codec reads and writes messages; a service whose messages carry
   * `google.protobuf.Any` gives the registry of the types packed in them.
   */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** Interceptors that run inside the runtime's own (metrics, errors), closest to the handler last. */
  interceptors?: Interceptor[];
  /**
   * Bearer-token authentication and the declared access rules; absent: every call is let in. A
   * method without a rule is refused to every caller (`startService` refuses to start with one).
   */
  auth?: AuthOptions;
  /**
   * Whether every request message is checked against the contract's rules (`buf.validate`) before
   * its handler runs; on unless false, which only a measurement of what the check costs wants.
   */
  validateRequests?: boolean;
}

/** A listening server. */
export interface Server {
  /** The port actually bound. */
  port: number;
  /** `http://host:port` for clients on this machine. */
  url: string;
  health: HealthState;
  metrics: Metrics;
  /** Aborted when the server starts shutting down; long-running handlers end on it. */
  shutdownSignal: AbortSignal;
  /**
   * Reports not ready for `drainMs` (see ServeOptions) while still serving, then stops accepting
   * connections, ends streams, and waits up to `graceMs` for calls to finish.
   */
  close(graceMs?: number): Promise<void>;
}

const keepAliveTimeoutMs = 5_000;
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const tlsHandshake = 0x16;

/**
 * Serves a service on one port: HTTP/1.1 and HTTP/2 cleartext (prior knowledge), and TLS with ALPN
 * when a certificate is configured, each speaking Connect (JSON, binary, GET), gRPC and gRPC-web;
 * plus gRPC health and reflection, `/healthz`, `/readyz` and `/metrics`.
 */
export async function serve(options: ServeOptions): Promise<Server> {
  const { limits, logger } = options;
  const health = createHealthState(options.services.map((service) => service.typeName));
  const metrics = createMetrics(options.name);
  const shutdown = new AbortController();
  /** Set when closing starts: /readyz says "not ready" from then on. */
  let draining = false;
  const corsOrigins = new Set(options.corsOrigins);

  const { auth } = options;

  const stats = createRequestStats();
  const services = [...options.services, Health, StatsService, TapService];
  const tap = createTap(registryOf(services.map((service) => service.file)));
  const validation =
    options.validateRequests === false
      ? []
      : [createValidationInterceptor(createContractValidator(services.map((s) => s.file)))];
  const interceptors = [
    createServerTracingInterceptor(),
    observeCalls([stats.observer, metrics.observer, tap.observer]),
    createErrorInterceptor(logger),
    createShutdownInterceptor(shutdown.signal),
    createCallContextInterceptor(limits.maxTimeoutMs),
    ...(auth ? [createTokenExpiryInterceptor()] : []),
    ...validation,
    createStreamLimitInterceptor(limits.maxStreamsPerClient),
    ...(options.interceptors ?? []),
  ];
  const requestGate = auth ? createAuthGate(auth) : undefined;
  // Each call's context values: its peer's address.
  const callValues = (address: string | undefined) =>
    new CallValues().set(peerKey, address ?? "unknown");
  // The compressions calls take and give (connect-node's).
  const compressions = [compressionGzip, compressionBrotli] as const;
  // Smaller messages go out uncompressed: compressing them costs more than it saves.
  const compressMinBytes = 1024;
  const servingPath = createServingPath({
    interceptors,
    requestGate,
    contextValues: callValues,
    maxMessageBytes: limits.maxMessageBytes,
    maxSendMessageBytes: limits.maxSendMessageBytes,
    maxTimeoutMs: limits.maxTimeoutMs,
    jsonOptions: options.jsonOptions,
    compressions,
    compressMinBytes,
    corsGrant: (origin) => corsGrant(corsOrigins, origin),
  });
  const router = servingPath.router;
  options.routes(router);
  health.register(router);
  stats.register(router, { service: options.name, shutdownSignal: shutdown.signal });
  tap.register(router, { server: options.name, shutdownSignal: shutdown.signal });
  registerReflection(router, services);

  const handle = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse,
  ) => {
    if (applyCors(corsOrigins, req, res)) return;
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/healthz") {
      return sendJson(res, 200, { status: "alive" });
    }
    if (req.method === "GET" && path === "/readyz") {
      options.readiness().then(
        (checks) => {
          const ready = Object.values(checks).every(Boolean) && !draining;
          sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", checks });
        },
        (error: unknown) => {
          logger.warn({ err: error }, "readiness check failed");
          sendJson(res, 503, { status: "not ready" });
        },
      );
      return;
    }
    if (req.method === "GET" && path === "/metrics") {
      if (auth && !auth.open.has("/metrics")) {
        void authenticateHttp(auth, req.headers.authorization).then((problem) => {
          if (problem) sendJson(res, 401, { error: problem });
          else sendMetrics(res);
        });
        return;
      }
      sendMetrics(res);
      return;
    }
    // HTTP/2 calls were taken before the compatibility API (takeFirst).
    if (!("stream" in req) && servingPath.takeHttp1(req, res as http.ServerResponse)) return;
    // Neither an RPC nor an endpoint: what a gRPC client reads as unimplemented.
    res.statusCode = 404;
    res.end();
  };

  const sendMetrics = (res: http.ServerResponse | http2.Http2ServerResponse) => {
    Registry.merge([metrics.registry, processRegistry])
      .metrics()
      .then(
        (text) => {
          res.statusCode = 200;
          res.setHeader("content-type", metrics.registry.contentType);
          res.end(text);
        },
        (error: unknown) => {
          logger.error({ err: error }, "metrics collection failed");
          sendJson(res, 500, { error: "metrics unavailable" });
        },
      );
  };

  const h2Options: http2.ServerOptions = {
    settings: {
      maxConcurrentStreams: limits.maxConcurrentStreams,
      maxHeaderListSize: limits.maxHeaderBytes,
    },
    maxSessionMemory: 32,
  };
  const h2 = http2.createServer(h2Options, handle);
  const h1 = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: keepAliveTimeoutMs,
    },
    handle,
  );
  const secure = options.tls
    ? http2.createSecureServer(
        {
          ...h2Options,
          allowHTTP1: true,
          cert: readFileSync(options.tls.certFile),
          key: readFileSync(options.tls.keyFile),
          ...(options.tls.clientCaFile
            ? {
                ca: readFileSync(options.tls.clientCaFile),
                requestCert: true,
                rejectUnauthorized: true,
              }
            : {}),
        },
        handle,
      )
    : undefined;
  takeFirst(h2, servingPath);
  if (secure) takeFirst(secure, servingPath);
  const sessions = new Set<http2.Http2Session>();
  const idleSessions = watchIdleSessions(limits.idleTimeoutMs);
  for (const server of [h2, secure]) {
    server?.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
      idleSessions.add(session);
      // Activity resets the idle timeout, so a client trickling a HEADERS frame would hold the
      // connection forever: a session must have sent a whole request within headersTimeoutMs.
      // GOAWAY alone would wait for the stream being trickled, so the session ends soon after.
      const firstRequest = setTimeout(() => {
        session.close();
        setTimeout(() => session.destroy(), 500).unref();
      }, limits.headersTimeoutMs);
      session.once("stream", () => clearTimeout(firstRequest));
      session.once("close", () => clearTimeout(firstRequest));
    });
  }
  // HTTP/1.1 connections and their requests in progress: timeouts between requests, and shutdown
  // closes the idle ones at once.
  const h1Connections = new Http1Connections(
    { headersTimeoutMs: limits.headersTimeoutMs, keepAliveTimeoutMs },
    refuse,
  );
  const acceptedAt = new WeakMap<Socket, number>();
  const trackHttp1Request = (req: http.IncomingMessage, res: http.ServerResponse) =>
    h1Connections.request(req, res);
  h1.on("connection", (socket: Socket) =>
    h1Connections.add(socket, acceptedAt.get(socket) ?? Date.now()),
  );
  h1.on("request", trackHttp1Request);
  secure?.on("secureConnection", (tlsSocket: TLSSocket) => {
    if (tlsSocket.alpnProtocol !== "h2") h1Connections.add(tlsSocket, Date.now());
  });
  secure?.on(
    "request",
    (
      req: http.IncomingMessage | http2.Http2ServerRequest,
      res: http.ServerResponse | http2.Http2ServerResponse,
    ) => {
      // With allowHTTP1, an HTTP/1.1 request comes with Node's HTTP/1.1 request and response.
      if (!("stream" in req)) trackHttp1Request(req, res as http.ServerResponse);
    },
  );
  h1.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    // Once the answer to a request in progress has begun, bytes written now would land inside it.
    if (h1Connections.answerStarted(socket)) {
      socket.destroy();
      return;
    }
    refuse(
      socket,
      error.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : "400 Bad Request",
    );
  });

  const sockets = new Set<Socket>();
  // Node serves HTTP/1.1 and cleartext HTTP/2 on separate servers; this listener reads the first
  // bytes of each connection and hands it to the right one (no library offers this for h2c).
  const listener = createNetServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    acceptedAt.set(socket, Date.now());
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const target = pick(head);
      if (target === "undecided") return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (target === "tls" && !secure) {
        socket.destroy();
        return;
      }
      // The HTTP/2 session takes over the socket and reads the bytes put back above itself. TLS
      // would take over the native handle and miss them, so it reads through a stream wrapper.
      // HTTP/1.1 reads through the stream, which must flow again.
      if (target === "h2") {
        h2.emit("connection", socket);
      } else if (target === "tls") {
        secure?.emit("connection", Duplex.from({ readable: socket, writable: socket }));
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });
  const pick = (head: Buffer): "h2" | "h1" | "tls" | "undecided" => {
    if (head[0] === tlsHandshake) return "tls";
    const length = Math.min(head.length, http2Preface.length);
    if (!head.subarray(0, length).equals(http2Preface.subarray(0, length))) return "h1";
    return head.length >= http2Preface.length ? "h2" : "undecided";
  };

  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port, options.host, () => {
      listener.off("error", reject);
      resolve();
    });
  });
  const address = listener.address();
  const port = address && typeof address === "object" ? address.port : options.port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    shutdownSignal: shutdown.signal,
    async close(graceMs = 5_000) {
      // Health turns NOT_SERVING first, and health watchers (and readiness pollers, for `drainMs`)
      // get a moment to hear it while calls are still served.
      draining = true;
      health.setAll(ServingStatus.NOT_SERVING);
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(options.drainMs ?? 0, Math.min(100, graceMs))),
      );
      listener.close();
      // Open streams end with `unavailable`; unary calls in flight run to completion. HTTP/2
      // clients get GOAWAY; idle HTTP/1.1 connections close now, busy ones after their response.
      shutdown.abort();
      for (const session of sessions) session.close();
      h1Connections.closeIdle();
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const socket of sockets) socket.destroy();
      idleSessions.stop();
    },
  };
}

/**
 * A call's context values, as connect-es's `createContextValues` keeps them (each under its key's
 * symbol, on the object itself), with the methods on the prototype: a watch holds its values for
 * as long as it is open, and connect-es's object makes three closures for each.
 */
class CallValues implements ContextValues {
  get<T>(key: ContextKey<T>): T {
    return key.id in this
      ? ((this as unknown as Record<symbol, T>)[key.id] as T)
      : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    (this as unknown as Record<symbol, T>)[key.id] = value;
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    delete (this as unknown as Record<symbol, unknown>)[key.id];
    return this;
  }
}

/**
 * Lets the serving path take the HTTP/2 calls before Node's compatibility API builds a request and
 * a response for them; the streams it does not take (health, readiness and metrics endpoints, CORS
 * preflights, unknown paths) go on to that API.
 */
function takeFirst(server: http2.Http2Server | http2.Http2SecureServer, path: ServingPath): void {
  const compat = server.listeners("stream");
  const [serveCompat] = compat;
  if (compat.length !== 1 || typeof serveCompat !== "function") {
    throw new Error("expected Node's HTTP/2 compatibility listener on the server");
  }
  server.removeAllListeners("stream");
  server.on(
    "stream",
    (
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
      flags: number,
      rawHeaders: string[],
    ) => {
      if (!path.take(stream, headers)) serveCompat.call(server, stream, headers, flags, rawHeaders);
    },
  );
}

// Answers a request that will not be served with `status` and closes the connection once the answer
// is written, without waiting for a client that may never read or close.
function refuse(socket: Duplex, status: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, () =>
    socket.destroy(),
  );
}

function sendJson(
  res: http.ServerResponse | http2.Http2ServerResponse,
  status: number,
  body: unknown,
): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(body));
}
