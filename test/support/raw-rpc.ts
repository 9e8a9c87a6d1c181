// Raw clients for hostile-input tests: node:http, node:http2 and node:net, never the project's own
// client code, so that a test can send what no well-behaved client would (broken envelopes, wrong
// content types, huge headers) and read the answer as bytes on the wire.
import * as http from "node:http";
import * as http2 from "node:http2";
import { connect as connectTcp } from "node:net";
import { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { readMetric } from "@shop/testing";

/** The wire protocols of a service port, as a raw client speaks them. */
export type WireProtocol = "connect" | "connect-stream" | "grpc" | "grpc-web";

/** One HTTP request as a raw client sends it. */
export interface RawRequest {
  /** HTTP/1.1 (node:http) or HTTP/2 with prior knowledge (node:http2). */
  http: "1.1" | "2";
  /** POST unless given. */
  method?: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Uint8Array | string;
}

/** What came back: an HTTP response, or a connection that closed (or reset) without one. */
export interface RawResponse {
  /** True when the connection or stream ended without a complete response. */
  closed: boolean;
  /** True when nothing came back before the client gave up. */
  timedOut: boolean;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Milliseconds from sending to the end of the response (or the close). */
  ms: number;
}

/** Sends `request` to 127.0.0.1:`port` on a connection of its own. */
export function send(port: number, request: RawRequest, timeoutMs = 5_000): Promise<RawResponse> {
  return request.http === "2"
    ? sendHttp2(port, request, timeoutMs)
    : sendHttp1(port, request, timeoutMs);
}

function emptyResponse(started: number): RawResponse {
  return {
    closed: true,
    timedOut: false,
    status: 0,
    headers: {},
    trailers: {},
    body: Buffer.alloc(0),
    ms: performance.now() - started,
  };
}

function sendHttp1(port: number, request: RawRequest, timeoutMs: number): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const result = emptyResponse(started);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (patch: Partial<RawResponse>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      Object.assign(result, patch, {
        body: Buffer.concat(chunks),
        ms: performance.now() - started,
      });
      req.destroy();
      resolve(result);
    };
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: request.method ?? "POST",
      path: request.path,
      headers: request.headers,
      agent: false,
    });
    const timer = setTimeout(() => finish({ timedOut: true, closed: false }), timeoutMs);
    req.on("response", (res) => {
      result.status = res.statusCode ?? 0;
      result.headers = res.headers;
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => finish({ closed: false, trailers: res.trailers }));
      // A response cut off before its end is a closed connection, whatever it said so far.
      res.on("error", () => finish({ closed: true }));
      res.on("close", () => finish({ closed: !res.complete }));
    });
    // Writing a body the server has already refused fails with EPIPE or ECONNRESET; what counts is
    // the response, if one arrived, so an error only ends the exchange when none did.
    req.on("error", () => {
      if (result.status === 0) finish({ closed: true });
    });
    req.on("close", () => {
      if (result.status === 0) finish({ closed: true });
    });
    if (request.body !== undefined) req.write(request.body);
    req.end();
  });
}

function sendHttp2(port: number, request: RawRequest, timeoutMs: number): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const result = emptyResponse(started);
    const chunks: Buffer[] = [];
    let settled = false;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const finish = (patch: Partial<RawResponse>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      Object.assign(result, patch, {
        body: Buffer.concat(chunks),
        ms: performance.now() - started,
      });
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ timedOut: true, closed: false }), timeoutMs);
    session.on("error", () => finish({ closed: true }));
    session.on("close", () => finish({ closed: true }));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": request.method ?? "POST",
        ":path": request.path,
        ...request.headers,
      });
    } catch {
      finish({ closed: true });
      return;
    }
    stream.on("response", (headers) => {
      result.status = Number(headers[":status"]);
      result.headers = headers;
    });
    stream.on("trailers", (trailers) => {
      result.trailers = trailers;
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    // The response is complete at its END_STREAM, even while the server has not read all of a
    // request it has already refused; a stream reset before that delivered no response.
    stream.on("end", () => finish({ closed: result.status === 0 }));
    stream.on("error", () => {});
    stream.on("close", () => finish({ closed: true }));
    if (request.body !== undefined) {
      stream.end(request.body);
    } else {
      stream.end();
    }
  });
}

/** Writes `bytes` on a raw TCP connection and returns what the server sent until it closed. */
export function sendTcp(
  port: number,
  bytes: Uint8Array | string,
  timeoutMs = 5_000,
): Promise<{ received: Buffer; closed: boolean; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connectTcp(port, "127.0.0.1", () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received: Buffer.concat(chunks), closed: false, ms: performance.now() - started });
    }, timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), closed: true, ms: performance.now() - started });
    });
  });
}

/** A message in the length-prefixed envelope of gRPC, gRPC-web and Connect streaming. */
export function envelope(payload: Uint8Array | string, flags = 0, length?: number): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(length ?? data.length, 1);
  return Buffer.concat([header, data]);
}

/** The outcome of an RPC as its protocol reports it. */
export interface RpcOutcome {
  /** A Connect code name ("invalid_argument", "ok"), `http <status>`, "closed" or "timeout". */
  label: string;
  /** The error message the client would see (empty when there is none). */
  message: string;
  ms: number;
}

/** The Connect name of a `grpc-status` value ("ok" for 0), as connect-es names codes. */
function grpcCodeLabel(status: string): string {
  const code = Number(status);
  if (code === 0) return "ok";
  return Number.isInteger(code) && Code[code] !== undefined
    ? codeToString(code)
    : `grpc-status ${status}`;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function grpcStatus(
  source: Record<string, string | string[] | undefined>,
): { label: string; message: string } | undefined {
  const status = headerValue(source["grpc-status"]);
  if (status === undefined) return undefined;
  const message = headerValue(source["grpc-message"]) ?? "";
  let decoded = message;
  try {
    decoded = decodeURIComponent(message);
  } catch {
    // Left as sent.
  }
  return { label: grpcCodeLabel(status), message: decoded };
}

/** The envelopes of a body, stopping at a truncated one. */
export function splitEnvelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const envelopes: { flags: number; data: Buffer }[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const flags = body.readUInt8(offset);
    const length = body.readUInt32BE(offset + 1);
    if (offset + 5 + length > body.length) break;
    envelopes.push({ flags, data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return envelopes;
}

function jsonError(body: Buffer): { label: string; message: string } | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { code?: unknown; message?: unknown };
    if (typeof parsed.code !== "string") return undefined;
    return {
      label: parsed.code,
      message: typeof parsed.message === "string" ? parsed.message : "",
    };
  } catch {
    return undefined;
  }
}

/** Reads `response` the way a client of `protocol` would. */
export function outcomeOf(protocol: WireProtocol, response: RawResponse): RpcOutcome {
  const ms = response.ms;
  if (response.timedOut) return { label: "timeout", message: "", ms };
  if (response.closed) return { label: "closed", message: "", ms };
  const contentType = headerValue(response.headers["content-type"]) ?? "";
  if (protocol === "connect") {
    if (response.status === 200) return { label: "ok", message: "", ms };
    const error = contentType.startsWith("application/json") ? jsonError(response.body) : undefined;
    return error ? { ...error, ms } : { label: `http ${response.status}`, message: "", ms };
  }
  if (protocol === "connect-stream") {
    if (response.status !== 200) {
      const error = contentType.startsWith("application/json")
        ? jsonError(response.body)
        : undefined;
      return error ? { ...error, ms } : { label: `http ${response.status}`, message: "", ms };
    }
    const end = splitEnvelopes(response.body).find((e) => (e.flags & 0x02) !== 0);
    if (!end) return { label: "closed", message: "no end-stream message", ms };
    const parsed = JSON.parse(end.data.toString("utf8")) as {
      error?: { code?: string; message?: string };
    };
    return parsed.error
      ? { label: parsed.error.code ?? "unknown", message: parsed.error.message ?? "", ms }
      : { label: "ok", message: "", ms };
  }
  if (response.status !== 200) {
    return { label: `http ${response.status}`, message: "", ms };
  }
  if (protocol === "grpc") {
    const status = grpcStatus(response.trailers) ?? grpcStatus(response.headers);
    return status ? { ...status, ms } : { label: "closed", message: "no grpc-status", ms };
  }
  const headerStatus = grpcStatus(response.headers);
  if (headerStatus) return { ...headerStatus, ms };
  const trailer = splitEnvelopes(response.body).find((e) => (e.flags & 0x80) !== 0);
  if (!trailer) return { label: "closed", message: "no trailer", ms };
  const fields: Record<string, string> = {};
  for (const line of trailer.data.toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = grpcStatus(fields);
  return status ? { ...status, ms } : { label: "closed", message: "no grpc-status", ms };
}

/** Internal detail that must never reach a client: SQL, stack frames, file paths. */
export const internalDetail =
  /\/work\/|\.ts:\d|\.js:\d|node_modules|\bat \S+ \(|\bselect\b.*\bfrom\b|\binsert into\b|\bupdate \S+ set\b|postgres|drizzle|syntax error at/i;

/** The memory a service process reports on /metrics, in bytes. */
export async function memoryOf(baseUrl: string): Promise<{ rss: number; heap: number }> {
  const [rss, heap, external] = await Promise.all([
    readMetric(baseUrl, "process_resident_memory_bytes"),
    readMetric(baseUrl, "nodejs_heap_size_used_bytes"),
    readMetric(baseUrl, "nodejs_external_memory_bytes"),
  ]);
  return { rss, heap: heap + external };
}

/** A streaming call over HTTP/2: its first message, and whether the request side stays open. */
export interface StreamingRequest {
  protocol: "connect-stream" | "grpc";
  path: string;
  headers: Record<string, string>;
  /** The first request message, enveloped. */
  body: Uint8Array;
  /** Half-closes the request after the first message (server and client streaming). */
  endRequest: boolean;
}

/**
 * Opens a streaming call over HTTP/2, sends its first message, and cancels the call once the
 * first response message or the call's end arrives: "message" for a message, else the outcome.
 */
export function sendFirst(
  port: number,
  request: StreamingRequest,
  timeoutMs = 5_000,
): Promise<RpcOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let body = Buffer.alloc(0);
    let settled = false;
    const finish = (label: string, message = "") => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ label, message, ms: performance.now() - started });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    session.on("error", () => finish("closed"));
    const stream = session.request({
      ":method": "POST",
      ":path": request.path,
      ...request.headers,
    });
    const fromResponse = (trailers: Record<string, string | string[] | undefined>) => {
      const raw: RawResponse = {
        closed: false,
        timedOut: false,
        status,
        headers,
        trailers,
        body,
        ms: performance.now() - started,
      };
      const outcome = outcomeOf(request.protocol, raw);
      finish(outcome.label, outcome.message);
    };
    stream.on("response", (received) => {
      status = Number(received[":status"]);
      headers = received;
      if (status === 200 && received["grpc-status"] !== undefined) fromResponse({});
    });
    stream.on("data", (chunk: Buffer) => {
      body = Buffer.concat([body, chunk]);
      if (status !== 200) return;
      const envelopes = splitEnvelopes(body);
      if (envelopes.some((e) => e.flags === 0)) return finish("message");
      if (envelopes.some((e) => (e.flags & 0x02) !== 0)) fromResponse({});
    });
    stream.on("trailers", (trailers) => fromResponse(trailers));
    stream.on("end", () => fromResponse({}));
    stream.on("error", () => {});
    stream.on("close", () => finish("closed"));
    if (request.endRequest) {
      stream.end(request.body);
    } else {
      stream.write(request.body);
    }
  });
}
