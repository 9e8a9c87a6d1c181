// Sends one permutation to a target as the official reference client (connectrpc/conformance,
// internal/app/referenceclient) would, but with connect-es: the protocol's own transport from
// @connectrpc/connect over the HTTP client of @connectrpc/connect-node, with an HTTP client wrapper
// in between that records the wire (status, headers, body, trailers) and, for cases carrying a
// `rawRequest`, sends those exact bytes instead of what connect-es built. The answer is then read by
// connect-es (messages, error) and by the wire record (metadata as connect-go attributes it, and the
// wire checks the reference client reports as feedback).
import * as http from "node:http";
import type * as http2 from "node:http2";
import * as https from "node:https";
import * as zlib from "node:zlib";
import type { DescMessage, DescMethod } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code as ConnectCode, ConnectError, type Transport } from "@connectrpc/connect";
import type {
  CommonTransportOptions,
  Compression as ConnectCompression,
  UniversalClientFn,
  UniversalClientRequest,
} from "@connectrpc/connect/protocol";
import {
  codeFromString,
  createTransport as createConnect,
} from "@connectrpc/connect/protocol-connect";
import { createTransport as createGrpc } from "@connectrpc/connect/protocol-grpc";
import { createTransport as createGrpcWeb } from "@connectrpc/connect/protocol-grpc-web";
import {
  compressionBrotli,
  compressionGzip,
  createNodeHttpClient,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import {
  type ClientCompatRequest,
  type ClientResponseResult,
  ClientResponseResultSchema,
} from "@shop/api/connectrpc/conformance/v1/client_compat_pb";
import {
  Codec,
  Compression,
  HTTPVersion,
  Protocol,
  StreamType,
} from "@shop/api/connectrpc/conformance/v1/config_pb";
import {
  type Error as ConformanceError,
  type ConformancePayload,
  ConformancePayloadSchema,
  ConformanceService,
  ErrorSchema,
  type Header,
  type MessageContents,
  type RawHTTPRequest,
} from "@shop/api/connectrpc/conformance/v1/service_pb";
import type { ConformanceTarget } from "../target.ts";
import { clientReceiveLimit, conformanceRegistry, type Permutation } from "./suites.ts";

/** A client certificate and key (PEM) presented on TLS connections that ask for one. */
export interface ClientCredentials {
  certPem: string;
  keyPem: string;
}

/** The connections to one target, shared by every call sent to it. */
export interface TargetConnections {
  target: ConformanceTarget;
  /** The HTTP client for an HTTP version over cleartext or TLS. */
  httpClient(version: HTTPVersion, tls: boolean): UniversalClientFn;
  close(): void;
}

/** Opens (lazily) HTTP/1.1 and HTTP/2 connections to a target, presenting `credentials` on TLS. */
export function connectTo(
  target: ConformanceTarget,
  credentials?: ClientCredentials,
): TargetConnections {
  const clients = new Map<string, UniversalClientFn>();
  const managers: Http2SessionManager[] = [];
  const agents: http.Agent[] = [];
  const tlsOptions = {
    ca: target.caCertPem,
    cert: credentials?.certPem,
    key: credentials?.keyPem,
  };
  return {
    target,
    httpClient(version, tls) {
      const key = `${version}/${tls}`;
      const existing = clients.get(key);
      if (existing !== undefined) return existing;
      const url = tls ? target.tlsUrl : target.cleartextUrl;
      if (url === undefined) throw new Error(`${target.name} serves no TLS`);
      let client: UniversalClientFn;
      if (version === HTTPVersion.HTTP_VERSION_2) {
        const manager = new Http2SessionManager(url, {}, tls ? tlsOptions : {});
        managers.push(manager);
        const sessions = {
          authority: manager.authority,
          async request(...args: Parameters<Http2SessionManager["request"]>) {
            const stream = await manager.request(...args);
            readEagerly(stream);
            return stream;
          },
          notifyResponseByteRead: (stream: http2.ClientHttp2Stream) =>
            manager.notifyResponseByteRead(stream),
        };
        client = createNodeHttpClient({ httpVersion: "2", sessionProvider: () => sessions });
      } else {
        // A connection per call: a server that answers before reading a whole request body (a
        // message over its limit) closes the connection after, and a reused one would then fail
        // the next call with ECONNRESET, a race of the client's pool rather than a server fault.
        const agent = tls
          ? new https.Agent({ keepAlive: false, ALPNProtocols: ["http/1.1"], ...tlsOptions })
          : new http.Agent({ keepAlive: false });
        agents.push(agent);
        client = createNodeHttpClient({ httpVersion: "1.1", nodeOptions: { agent } });
      }
      clients.set(key, client);
      return client;
    },
    close() {
      for (const m of managers) m.abort();
      for (const a of agents) a.destroy();
    },
  };
}

/**
 * Makes an HTTP/2 stream buffer its response from the start. connect-node creates the stream's
 * async iterator when the response headers arrive but reads it a few ticks later; a small response
 * whose stream has closed by then (both sides done) is reported as "Premature close" although every
 * byte arrived, a race that grows with load. Reading from the first byte on, as Go's client does,
 * leaves nothing to lose; the iterator connect-node asks for then serves what was read. Relies on
 * when connect-node asks for that iterator: @connectrpc/connect-node is pinned exactly (package.json).
 */
function readEagerly(stream: http2.ClientHttp2Stream): void {
  const chunks = createChunkQueue<Buffer>();
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => chunks.finish());
  stream.on("error", (e: unknown) => chunks.fail(e));
  stream.on("close", () => {
    if (!chunks.ended) {
      chunks.fail(new Error(`the stream closed before its end (RST_STREAM ${stream.rstCode})`));
    }
  });
  const iterator = chunks.read();
  Object.defineProperty(stream, Symbol.asyncIterator, { value: () => iterator });
}

/**
 * Chunks handed over from a producer that must not wait to a consumer that reads them later, in
 * order, then the end, or a failure (the first one counts, also after the end). Written by hand:
 * both users above need a reader that sees every chunk even when it starts after the end.
 */
function createChunkQueue<T>() {
  const queue: T[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  return {
    push(chunk: T): void {
      queue.push(chunk);
      notify();
    },
    get ended(): boolean {
      return ended;
    },
    finish(): void {
      ended = true;
      notify();
    },
    fail(error: unknown): void {
      failure ??= error;
      ended = true;
      notify();
    },
    async *read(): AsyncGenerator<T> {
      for (;;) {
        const chunk = queue.shift();
        if (chunk !== undefined) {
          yield chunk;
          continue;
        }
        if (ended) {
          if (failure !== undefined) throw failure;
          return;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

/** What the HTTP exchange of one call looked like on the wire. */
interface Wire {
  status?: number;
  header?: Headers;
  trailer?: Headers;
  chunks: Uint8Array[];
  bodyDone: boolean;
  /** Settles once the whole body has been read (or reading failed). */
  drain?: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How long a call may take before the runner gives up on the server (no suite comes close). */
const callLimitMs = 20_000;

/** Sends `perm` to the target behind `connections` and records everything the server answered. */
export async function send(
  connections: TargetConnections,
  perm: Permutation,
): Promise<ClientResponseResult> {
  const request = perm.request;
  const target = connections.target;
  const wire: Wire = { chunks: [], bodyDone: false };
  const extraHeaders: [string, string][] = [
    ["x-test-case-name", perm.name],
    ...Object.entries(target.extraHeaders ?? {}),
  ];
  const base = connections.httpClient(request.httpVersion, perm.useTls);
  const httpClient = capture(base, wire, request.rawRequest, extraHeaders);
  const transport = transportFor(
    request,
    httpClient,
    perm.useTls ? target.tlsUrl : target.cleartextUrl,
  );
  const method = ConformanceService.methods.find((m) => m.name === request.method);
  if (method === undefined) throw new Error(`${perm.name}: no method ${request.method}`);

  const header = new Headers();
  for (const h of request.requestHeaders) for (const v of h.value) header.append(h.name, v);
  for (const [name, value] of extraHeaders) header.append(name, value);
  if (request.timeoutMs !== undefined) {
    // The deadline travels as a header only: the server, not this client, must enforce it.
    if (request.protocol === Protocol.CONNECT) {
      header.set("connect-timeout-ms", String(request.timeoutMs));
    } else {
      header.set("grpc-timeout", `${request.timeoutMs}m`);
    }
  }
  const inputs = request.requestMessages.map((any) => unpack(any));

  const abort = new AbortController();
  const limit = setTimeout(
    () =>
      abort.abort(
        new ConnectError("the server did not answer in time", ConnectCode.DeadlineExceeded),
      ),
    callLimitMs,
  );
  let outcome: CallOutcome;
  try {
    outcome = await invoke(transport, method, request, header, inputs, abort);
  } finally {
    clearTimeout(limit);
  }
  // connect-es may stop at a status in the headers (trailers-only) before the body ends; the wire
  // record needs that end to tell trailers-only from a body cut short.
  await Promise.race([wire.drain?.(), sleep(2000)]);
  return record(request, wire, outcome);
}

interface CallOutcome {
  payloads: ConformancePayload[];
  error?: ConformanceError;
  /** Whether the call ended in an error the way unary calls report them (metadata in one bag). */
  unaryError: boolean;
}

function unpack(any: Any): Record<string, unknown> {
  const message = anyUnpack(any, conformanceRegistry);
  if (message === undefined) throw new Error(`cannot unpack ${any.typeUrl}`);
  return message as unknown as Record<string, unknown>;
}

function transportFor(
  request: ClientCompatRequest,
  httpClient: UniversalClientFn,
  baseUrl: string | undefined,
): Transport {
  if (baseUrl === undefined) throw new Error("the target serves no TLS");
  const compression = compressionOf(request.compression);
  const options: CommonTransportOptions = {
    httpClient,
    baseUrl,
    useBinaryFormat: request.codec !== Codec.JSON,
    interceptors: [],
    jsonOptions: { registry: conformanceRegistry },
    acceptCompression: compression === null ? [] : [compression],
    sendCompression: compression,
    // Compress every message, so that small test messages exercise the server's decompression.
    compressMinBytes: 0,
    readMaxBytes:
      request.messageReceiveLimit > 0 ? request.messageReceiveLimit : clientReceiveLimit,
    writeMaxBytes: 0xffffffff,
    // As the reference client: idempotent methods go as GET over Connect.
    useHttpGet: true,
  };
  switch (request.protocol) {
    case Protocol.GRPC:
      return createGrpc(options);
    case Protocol.GRPC_WEB:
      return createGrpcWeb(options);
    default:
      return createConnect(options);
  }
}

function compressionOf(compression: Compression): ConnectCompression | null {
  switch (compression) {
    case Compression.GZIP:
      return compressionGzip;
    case Compression.BR:
      return compressionBrotli;
    case Compression.IDENTITY:
    case Compression.UNSPECIFIED:
      return null;
    default:
      throw new Error(`compression ${Compression[compression]} is not supported by the runner`);
  }
}

type CancelTiming =
  | { beforeCloseSend: true; afterCloseSendMs: -1; afterNumResponses: -1 }
  | { beforeCloseSend: false; afterCloseSendMs: number; afterNumResponses: number };

function cancelTiming(request: ClientCompatRequest): CancelTiming {
  const timing = request.cancel?.cancelTiming;
  if (request.cancel === undefined) {
    return { beforeCloseSend: false, afterCloseSendMs: -1, afterNumResponses: -1 };
  }
  switch (timing?.case) {
    case "beforeCloseSend":
      return { beforeCloseSend: true, afterCloseSendMs: -1, afterNumResponses: -1 };
    case "afterCloseSendMs":
      return { beforeCloseSend: false, afterCloseSendMs: timing.value, afterNumResponses: -1 };
    case "afterNumResponses":
      return { beforeCloseSend: false, afterCloseSendMs: -1, afterNumResponses: timing.value };
    default:
      // A cancel with no timing means right after the request is sent, as upstream reads it.
      return { beforeCloseSend: false, afterCloseSendMs: 0, afterNumResponses: -1 };
  }
}

function payloadOf(message: unknown): ConformancePayload {
  const payload = (message as { payload?: ConformancePayload }).payload;
  return payload ?? create(ConformancePayloadSchema);
}

async function invoke(
  transport: Transport,
  method: DescMethod,
  request: ClientCompatRequest,
  header: Headers,
  inputs: Record<string, unknown>[],
  abort: AbortController,
): Promise<CallOutcome> {
  const timing = cancelTiming(request);
  const cancel = () =>
    abort.abort(new ConnectError("canceled by the test case", ConnectCode.Canceled));
  const payloads: ConformancePayload[] = [];
  try {
    if (method.methodKind === "unary") {
      if (timing.afterCloseSendMs >= 0) setTimeout(cancel, timing.afterCloseSendMs);
      const response = await transport.unary(
        method as never,
        abort.signal,
        undefined,
        header,
        inputs[0] as never,
      );
      payloads.push(payloadOf(response.message));
      return { payloads, unaryError: false };
    }
    if (method.methodKind === "client_streaming") {
      const input = (async function* () {
        for (const message of inputs) {
          await sleep(request.requestDelayMs);
          yield message;
        }
        if (timing.beforeCloseSend) cancel();
        else if (timing.afterCloseSendMs >= 0) setTimeout(cancel, timing.afterCloseSendMs);
      })();
      try {
        const response = await transport.stream(
          method as never,
          abort.signal,
          undefined,
          header,
          input as never,
        );
        let count = 0;
        for await (const message of response.message) {
          payloads.push(payloadOf(message));
          count++;
        }
        if (count !== 1) {
          throw new ConnectError(
            `protocol error: ${count === 0 ? "missing" : "more than one"} response message`,
            ConnectCode.Unimplemented,
          );
        }
        return { payloads, unaryError: false };
      } catch (e) {
        return { payloads: [], error: toError(e), unaryError: true };
      }
    }
    // Server streams and bidi streams: metadata is read apart from the error.
    const fullDuplex = request.streamType === StreamType.FULL_DUPLEX_BIDI_STREAM;
    let received = 0;
    let ended = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const input = (async function* () {
      for (const [i, message] of inputs.entries()) {
        if (method.methodKind !== "server_streaming") await sleep(request.requestDelayMs);
        if (ended) return;
        yield message;
        if (fullDuplex) {
          // Ping-pong: the next request goes only once the answer to this one has arrived.
          while (received <= i && !ended) await new Promise<void>((resolve) => (wake = resolve));
        }
      }
      if (timing.beforeCloseSend) cancel();
      else if (timing.afterCloseSendMs >= 0 && method.methodKind !== "server_streaming") {
        setTimeout(cancel, timing.afterCloseSendMs);
      }
    })();
    try {
      const response = await transport.stream(
        method as never,
        abort.signal,
        undefined,
        header,
        input as never,
      );
      if (method.methodKind === "server_streaming" && timing.afterCloseSendMs >= 0) {
        setTimeout(cancel, timing.afterCloseSendMs);
      }
      for await (const message of response.message) {
        payloads.push(payloadOf(message));
        received++;
        notify();
        if (received === timing.afterNumResponses) cancel();
      }
      return { payloads, unaryError: false };
    } catch (e) {
      return { payloads, error: toError(e), unaryError: false };
    } finally {
      ended = true;
      notify();
    }
  } catch (e) {
    return { payloads: [], error: toError(e), unaryError: true };
  }
}

function toError(e: unknown): ConformanceError {
  const error = ConnectError.from(e);
  const details: Any[] = error.details.map((d) => {
    if ("type" in d) {
      return {
        $typeName: "google.protobuf.Any",
        typeUrl: `type.googleapis.com/${d.type}`,
        value: d.value,
      } as Any;
    }
    const desc = d.desc as DescMessage;
    return {
      $typeName: "google.protobuf.Any",
      typeUrl: `type.googleapis.com/${desc.typeName}`,
      value: new Uint8Array(),
    } as Any;
  });
  // Both enums number the codes as the protocol does.
  return create(ErrorSchema, { code: error.code as number, message: error.rawMessage, details });
}

/** Wraps an HTTP client so that the exchange is recorded, and a raw request replaces the built one. */
function capture(
  base: UniversalClientFn,
  wire: Wire,
  raw: RawHTTPRequest | undefined,
  extraHeaders: [string, string][],
): UniversalClientFn {
  return async (built) => {
    let request = built;
    if (raw !== undefined) {
      request = rawRequest(built, raw, extraHeaders);
      // What connect-es would have sent is not sent; read it so that its producer finishes.
      if (built.body !== undefined) {
        void (async () => {
          try {
            for await (const _ of built.body ?? []) {
              // drained
            }
          } catch {
            // the producer's own failure does not concern the raw request
          }
        })();
      }
    }
    const response = await base(request);
    wire.status = response.status;
    wire.header = new Headers(response.header);
    wire.trailer = response.trailer;
    // The body is read to its end whatever connect-es does (it may stop at a status in the
    // headers, or at an error): the wire record wants every byte and the end of the response.
    const source = response.body[Symbol.asyncIterator]();
    const chunks = createChunkQueue<Uint8Array>();
    const pump = (async () => {
      try {
        for (;;) {
          const next = await source.next();
          if (next.done === true) break;
          wire.chunks.push(next.value);
          chunks.push(next.value);
        }
        wire.bodyDone = true;
        chunks.finish();
      } catch (e) {
        chunks.fail(e);
      }
    })();
    wire.drain = () => pump;
    return { ...response, body: chunks.read() };
  };
}

function compress(data: Uint8Array, compression: Compression): Uint8Array {
  switch (compression) {
    case Compression.IDENTITY:
    case Compression.UNSPECIFIED:
      return data;
    case Compression.GZIP:
      return zlib.gzipSync(data);
    case Compression.BR:
      return zlib.brotliCompressSync(data);
    case Compression.ZSTD:
      return zlib.zstdCompressSync(data);
    case Compression.DEFLATE:
      return zlib.deflateSync(data);
    default:
      throw new Error(`cannot compress with ${Compression[compression]}`);
  }
}

function contentsBytes(contents: MessageContents | undefined): Uint8Array {
  if (contents === undefined) return new Uint8Array();
  let bytes: Uint8Array;
  switch (contents.data.case) {
    case "binary":
      bytes = contents.data.value;
      break;
    case "text":
      bytes = new TextEncoder().encode(contents.data.value);
      break;
    case "binaryMessage":
      bytes = contents.data.value.value;
      break;
    default:
      return new Uint8Array();
  }
  return compress(bytes, contents.compression);
}

/** Percent-encodes bytes as Go's url.QueryEscape does (space as `+`). */
function queryEscape(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (b === 0x20) out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function rawRequest(
  built: UniversalClientRequest,
  raw: RawHTTPRequest,
  extraHeaders: [string, string][],
): UniversalClientRequest {
  const origin = new URL(built.url).origin;
  let uri = raw.uri;
  if (raw.rawQueryParams.length > 0 || raw.encodedQueryParams.length > 0) {
    const parsed = new URL(raw.uri, origin);
    const params = new Map<string, Uint8Array[]>();
    const add = (name: string, value: Uint8Array) =>
      params.set(name, [...(params.get(name) ?? []), value]);
    for (const [name, value] of parsed.searchParams) add(name, new TextEncoder().encode(value));
    for (const p of raw.rawQueryParams)
      for (const v of p.value) add(p.name, new TextEncoder().encode(v));
    for (const p of raw.encodedQueryParams) {
      const bytes = contentsBytes(p.value);
      add(p.name, p.base64Encode ? new TextEncoder().encode(base64UrlPadded(bytes)) : bytes);
    }
    // As Go's url.Values.Encode: keys sorted, each value escaped byte by byte.
    const query = [...params.keys()]
      .sort()
      .flatMap((name) =>
        (params.get(name) ?? []).map(
          (v) => `${queryEscape(new TextEncoder().encode(name))}=${queryEscape(v)}`,
        ),
      )
      .join("&");
    uri = `${parsed.pathname}?${query}`;
  }
  const header = new Headers();
  for (const h of raw.headers) for (const v of h.value) header.append(h.name, v);
  for (const [name, value] of extraHeaders) header.append(name, value);
  let body: Uint8Array | undefined;
  if (raw.body.case === "unary") {
    body = contentsBytes(raw.body.value);
  } else if (raw.body.case === "stream") {
    const parts: Uint8Array[] = [];
    for (const item of raw.body.value.items) {
      const payload = contentsBytes(item.payload);
      const prefix = Buffer.alloc(5);
      prefix[0] = item.flags;
      prefix.writeUInt32BE(item.length ?? payload.length, 1);
      parts.push(prefix, payload);
    }
    body = Buffer.concat(parts);
  }
  return {
    url: origin + uri,
    method: raw.verb,
    header,
    signal: built.signal,
    body:
      body === undefined
        ? undefined
        : (async function* () {
            yield body;
          })(),
  };
}

/** Go's base64.URLEncoding (padded), which the reference client uses for encoded query params. */
function base64UrlPadded(bytes: Uint8Array): string {
  const s = Buffer.from(bytes).toString("base64url");
  return s + "=".repeat((4 - (s.length % 4)) % 4);
}

function headersToList(
  headers: Headers | undefined,
  omit: (name: string) => boolean = () => false,
): Header[] {
  const out: Header[] = [];
  headers?.forEach((value, name) => {
    if (omit(name)) return;
    out.push({ $typeName: "connectrpc.conformance.v1.Header", name, value: [value] } as Header);
  });
  return out;
}

interface Envelope {
  flags: number;
  data: Uint8Array;
}

function envelopes(body: Uint8Array): { items: Envelope[]; incomplete: boolean } {
  const items: Envelope[] = [];
  let offset = 0;
  while (offset + 5 <= body.length) {
    const flags = body[offset] ?? 0;
    const length = Buffer.from(body.buffer, body.byteOffset + offset + 1, 4).readUInt32BE(0);
    if (offset + 5 + length > body.length) return { items, incomplete: true };
    items.push({ flags, data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return { items, incomplete: offset !== body.length };
}

function decompress(data: Uint8Array, encoding: string | null): Uint8Array | undefined {
  try {
    switch (encoding) {
      case null:
      case "":
      case "identity":
        return data;
      case "gzip":
        return zlib.gunzipSync(data);
      case "br":
        return zlib.brotliDecompressSync(data);
      case "zstd":
        return zlib.zstdDecompressSync(data);
      case "deflate":
        return zlib.inflateSync(data);
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** Turns the call's outcome and its wire record into the result the official client reports. */
function record(
  request: ClientCompatRequest,
  wire: Wire,
  outcome: CallOutcome,
): ClientResponseResult {
  const feedback: string[] = [];
  const body = Buffer.concat(wire.chunks);
  const contentType = wire.header?.get("content-type") ?? "";
  const isGrpc = contentType === "application/grpc" || contentType.startsWith("application/grpc+");
  const isGrpcWeb = contentType.startsWith("application/grpc-web");
  const httpTrailers = wire.trailer ?? new Headers();
  // Trailers-only: no body and no trailers, read to the end, or cut short by connect-es because the
  // status was already in the headers.
  const trailersOnly = (trailerCount: number) =>
    body.length === 0 &&
    trailerCount === 0 &&
    (wire.bodyDone || wire.header?.has("grpc-status") === true);
  let trailerCount = 0;
  for (const _ of httpTrailers.keys()) trailerCount++;

  let headers: Header[] = headersToList(wire.header);
  let trailers: Header[] = [];
  if (wire.header !== undefined) {
    if (request.protocol === Protocol.CONNECT && contentType.startsWith("application/connect+")) {
      const endStream = connectEndStream(
        body,
        wire.header.get("connect-content-encoding"),
        feedback,
      );
      trailers = endStream;
    } else if (request.protocol === Protocol.CONNECT) {
      // Connect unary: trailers travel as `trailer-` prefixed headers.
      headers = headersToList(wire.header, (n) => n.startsWith("trailer-"));
      const prefixed: Header[] = [];
      wire.header.forEach((value, name) => {
        if (name.startsWith("trailer-")) {
          prefixed.push({
            $typeName: "connectrpc.conformance.v1.Header",
            name: name.slice(8),
            value: [value],
          } as Header);
        }
      });
      trailers = prefixed;
      if (contentType === "application/json" && wire.status !== 200) {
        const json = decompress(body, wire.header.get("content-encoding"));
        if (json !== undefined) examineConnectError(json, "connect error JSON", feedback);
      }
    } else if (isGrpcWeb) {
      const { items } = envelopes(body);
      const trailerFrame = items.find((e) => (e.flags & 0x80) !== 0);
      if (trailerFrame !== undefined) {
        let data: Uint8Array | undefined = trailerFrame.data;
        if ((trailerFrame.flags & 0x01) !== 0)
          data = decompress(data, wire.header.get("grpc-encoding"));
        const parsed = grpcWebTrailers(Buffer.from(data ?? []).toString("latin1"), feedback);
        checkGrpcStatus(parsed, feedback);
        trailers = headersToList(parsed);
      } else if (trailersOnly(trailerCount)) {
        // Trailers-only: the headers are the trailers.
        checkGrpcStatus(wire.header, feedback);
        trailers = headersToList(wire.header, (n) => n === "content-type");
      }
    } else if (isGrpc) {
      if (trailersOnly(trailerCount)) {
        checkGrpcStatus(wire.header, feedback);
        trailers = headersToList(wire.header, (n) => n === "content-type");
      } else {
        if (trailerCount > 0) checkGrpcStatus(httpTrailers, feedback);
        trailers = headersToList(httpTrailers);
      }
    } else {
      trailers = headersToList(httpTrailers);
    }
    if (!isGrpc && trailerCount > 0) {
      feedback.push(`response included ${trailerCount} HTTP trailers but should not have any`);
    }
  }
  if (outcome.error !== undefined && outcome.unaryError) {
    // connect-go hands a unary error's headers and trailers over as one bag of metadata.
    trailers = [...headers, ...trailers];
    headers = [];
    checkBinaryMetadata("metadata", trailers, feedback);
  } else {
    checkBinaryMetadata("headers", headers, feedback);
    checkBinaryMetadata("trailers", trailers, feedback);
  }
  return create(ClientResponseResultSchema, {
    responseHeaders: headers,
    responseTrailers: trailers,
    payloads: outcome.payloads,
    error: outcome.error,
    httpStatusCode: wire.status,
    feedback,
  });
}

function connectEndStream(body: Uint8Array, encoding: string | null, feedback: string[]): Header[] {
  const { items } = envelopes(body);
  const end = items.find((e) => (e.flags & 0x02) !== 0);
  if (end === undefined) return [];
  const data = (end.flags & 0x01) !== 0 ? decompress(end.data, encoding) : end.data;
  if (data === undefined) {
    feedback.push("connect end stream: cannot decompress");
    return [];
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString("utf8"));
  } catch (e) {
    feedback.push(`connect end stream JSON: ${String(e)}`);
    return [];
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    feedback.push("connect end stream JSON: expecting an object");
    return [];
  }
  const trailers: Header[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "error") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        feedback.push(`connect end stream JSON: value for key "error" is not an object`);
      } else {
        examineConnectErrorObject(
          value as Record<string, unknown>,
          "connect end stream JSON: error",
          feedback,
        );
      }
    } else if (key === "metadata") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        feedback.push(`connect end stream JSON: value for key "metadata" is not an object`);
        continue;
      }
      for (const [name, values] of Object.entries(value as Record<string, unknown>)) {
        if (!Array.isArray(values) || values.some((v) => typeof v !== "string")) {
          feedback.push(
            `connect end stream JSON: metadata[${JSON.stringify(name)}] is not an array of strings`,
          );
          continue;
        }
        trailers.push({
          $typeName: "connectrpc.conformance.v1.Header",
          name,
          value: values as string[],
        } as Header);
      }
    } else {
      feedback.push(`connect end stream JSON: invalid key ${JSON.stringify(key)}`);
    }
  }
  return trailers;
}

/** Whether `name` is a Connect error code ("ok" is not one); its own keys only, not Object's. */
function isConnectCode(name: string): boolean {
  return typeof codeFromString(name) === "number";
}

function examineConnectError(json: Uint8Array, prefix: string, feedback: string[]): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(json).toString("utf8"));
  } catch (e) {
    feedback.push(`${prefix}: ${String(e)}`);
    return;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    feedback.push(`${prefix}: expecting an object`);
    return;
  }
  examineConnectErrorObject(parsed as Record<string, unknown>, prefix, feedback);
}

const unpaddedBase64 = /^[A-Za-z0-9+/]*$/;

function examineConnectErrorObject(
  error: Record<string, unknown>,
  prefix: string,
  feedback: string[],
): void {
  if (!("code" in error)) feedback.push(`${prefix}: missing required key "code"`);
  for (const [key, value] of Object.entries(error)) {
    if (key === "code") {
      if (typeof value !== "string" || !isConnectCode(value)) {
        feedback.push(
          `${prefix}: value for key "code" is not a recognized error code name: ${JSON.stringify(value)}`,
        );
      }
    } else if (key === "message") {
      if (typeof value !== "string")
        feedback.push(`${prefix}: value for key "message" is not a string`);
    } else if (key === "details") {
      if (!Array.isArray(value)) {
        feedback.push(`${prefix}: value for key "details" is not an array`);
        continue;
      }
      value.forEach((detail, i) => {
        const p = `${prefix}: details[${i}]`;
        if (typeof detail !== "object" || detail === null) {
          feedback.push(`${p}: expecting an object`);
          return;
        }
        const d = detail as Record<string, unknown>;
        for (const k of Object.keys(d)) {
          if (k !== "type" && k !== "value" && k !== "debug")
            feedback.push(`${p}: invalid key ${JSON.stringify(k)}`);
        }
        if (typeof d.type !== "string") feedback.push(`${p}: missing or invalid "type"`);
        if (typeof d.value !== "string") feedback.push(`${p}: missing or invalid "value"`);
        else if (!unpaddedBase64.test(d.value)) {
          feedback.push(
            `${p}: value for key "value" is not valid unpadded base64: ${JSON.stringify(d.value)}`,
          );
        }
      });
    } else {
      feedback.push(`${prefix}: invalid key ${JSON.stringify(key)}`);
    }
  }
}

function grpcWebTrailers(block: string, feedback: string[]): Headers {
  const trailers = new Headers();
  const lines = block.split("\n");
  let withoutCr = 0;
  let blank = 0;
  lines.forEach((raw, i) => {
    let line = raw;
    if (i === lines.length - 1) {
      if (line === "") return;
    } else if (!line.endsWith("\r")) {
      withoutCr++;
    } else {
      line = line.slice(0, -1);
    }
    if (line === "") {
      blank++;
      return;
    }
    const colon = line.indexOf(":");
    if (colon < 0) {
      feedback.push(
        `grpc-web trailers include invalid field (missing colon): ${JSON.stringify(line)}`,
      );
      return;
    }
    const key = line.slice(0, colon);
    if (key !== key.toLowerCase())
      feedback.push(`grpc-web trailers include non-lower-case field key: ${JSON.stringify(key)}`);
    try {
      trailers.append(key, line.slice(colon + 1).trim());
    } catch {
      feedback.push(`grpc-web trailers include invalid field: ${JSON.stringify(line)}`);
    }
  });
  if (blank > 0) feedback.push("grpc-web trailers include blank lines");
  if (withoutCr > 0)
    feedback.push("grpc-web trailers have lines with LF line ending instead of CRLF");
  if (lines[lines.length - 1] !== "")
    feedback.push("grpc-web trailers should end with CRLF but does not");
  return trailers;
}

function checkGrpcStatus(headers: Headers, feedback: string[]): void {
  const status = headers.get("grpc-status");
  let code: number | undefined;
  if (status === null) {
    feedback.push("trailers did not include 'grpc-status' key");
  } else if (status.includes(",")) {
    feedback.push("trailers include multiple 'grpc-status' keys");
  } else if (!/^\d+$/.test(status)) {
    feedback.push(`trailers include invalid 'grpc-status' value ${JSON.stringify(status)}`);
  } else {
    code = Number(status);
    if (code > 16) feedback.push(`trailers include invalid 'grpc-status' value ${code}`);
  }
  const message = headers.get("grpc-message");
  let decodedMessage: string | undefined;
  if (message !== null) {
    for (let i = 0; i < message.length; i++) {
      const c = message.charCodeAt(i);
      if (message[i] === "%") {
        if (!/^[0-9A-Fa-f]{2}$/.test(message.slice(i + 1, i + 3))) {
          feedback.push(
            `trailers include incorrectly-encoded 'grpc-message' value ${JSON.stringify(message)}`,
          );
          break;
        }
        i += 2;
      } else if (c < 0x20 || c > 0x7e) {
        feedback.push(
          `trailers include incorrectly-encoded 'grpc-message' value ${JSON.stringify(message)}: byte at ${i} should be percent-encoded`,
        );
        break;
      }
    }
    if (code === 0 && message !== "") {
      feedback.push(
        "trailers include a non-empty 'grpc-message' value with zero/okay 'grpc-status'",
      );
    }
    try {
      decodedMessage = decodeURIComponent(message);
    } catch {
      decodedMessage = undefined;
    }
  }
  const detailsBin = headers.get("grpc-status-details-bin");
  if (detailsBin === null) return;
  if (detailsBin.includes("=")) {
    feedback.push(
      "trailers include 'grpc-status-details-bin' value with padding but servers should emit unpadded",
    );
  }
  try {
    const reader = new BinaryReader(Buffer.from(detailsBin, "base64"));
    let statusCode = 0;
    let statusMessage = "";
    let detailCount = 0;
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === 1) statusCode = reader.int32();
      else if (field === 2) statusMessage = reader.string();
      else if (field === 3) {
        reader.bytes();
        detailCount++;
      } else reader.skip(wireType);
    }
    if (code !== undefined && statusCode !== code) {
      feedback.push(
        `trailers include 'grpc-status-details-bin' value that disagrees with 'grpc-status' value: ${statusCode} != ${code}`,
      );
    }
    if (statusCode === 0 && detailCount > 0) {
      feedback.push(
        "trailers include 'grpc-status-details-bin' value with zero/okay 'grpc-status' and non-empty details",
      );
    }
    if (decodedMessage !== undefined && statusMessage !== decodedMessage) {
      feedback.push(
        `trailers include 'grpc-status-details-bin' value that disagrees with 'grpc-message' value: ${JSON.stringify(statusMessage)} != ${JSON.stringify(decodedMessage)}`,
      );
    }
  } catch (e) {
    feedback.push(`trailers include un-parseable 'grpc-status-details-bin' value: ${String(e)}`);
  }
}

function checkBinaryMetadata(what: string, metadata: Header[], feedback: string[]): void {
  for (const entry of metadata) {
    const name = entry.name.toLowerCase();
    if (!name.endsWith("-bin") || name === "grpc-status-details-bin") continue;
    for (const joined of entry.value) {
      for (const value of joined.split(",").map((v) => v.trim())) {
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
          feedback.push(`${what} include incorrectly-encoded '${entry.name}' value`);
          return;
        }
        if (value.includes("=")) {
          feedback.push(
            `${what} include '${entry.name}' value with padding but servers should emit unpadded: ${value}`,
          );
        }
      }
    }
  }
}
