import type { IncomingMessage, ServerResponse } from "node:http";
import {
  constants as http2Constants,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  fromJsonString,
  type JsonReadOptions,
  type JsonWriteOptions,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createContextKey,
  createMethodImplSpec,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamResponse,
  type UnaryResponse,
} from "@connectrpc/connect";
import { type Compression, mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  endStreamFlag,
  endStreamToJson,
  errorToJsonBytes,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
import {
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { convertOnce, type SharedEncoding, sharedEncoding } from "../change-feed/convert-once.ts";
import {
  compressedFlag,
  EnvelopeBuffer,
  envelope,
  envelopeHeaderBytes,
  messageOf,
} from "./envelope.ts";
import { encodeGrpcMessage } from "./grpc-message.ts";
import { IncomingHeaders } from "./incoming-headers.ts";
import { actsOnStreamsOnly, stopStreamOn } from "./streams.ts";
import { waitTurn } from "./turns.ts";

// The runtime's serving path, the one every call takes. connect-es serves calls through its
// streaming machinery: about ten async-iterable transforms per call and per streamed message, a
// Web request and response per call built by connect-node's adapter, and aborts that construct a
// DOMException each (bench/README.md, "Where the time goes"). This path serves them straight from
// the HTTP stream: every kind of call (unary, server, client and bidi streams) over gRPC and
// gRPC-web (the mesh's own calls, grpc-web clients) and Connect (browsers, curl, the dashboard;
// unary also by GET for methods without side effects), protobuf or JSON, compressed or not, over
// HTTP/2 and HTTP/1.1 (but bidi streams, 505). It keeps the contract of connect-es's handlers and
// interceptors (codes, messages, headers, trailers, deadlines, limits, compression, Connect's JSON
// errors and end-stream message, gRPC-web's trailer frame, the 405/415 of a request no protocol
// takes), so that implementations and interceptors written for connect-es run unchanged, and the
// conformance suites hold it to the protocols. No library serves connect-es's handlers and
// interceptors from Node's HTTP stream without that machinery, hence this code.

/** What the serving path needs to serve a router's methods. */
export interface ServingPathOptions {
  /** The interceptors of the router, outermost first, as connect-es applies them. */
  interceptors: readonly Interceptor[];
  /** Runs after the headers, before the body is read; a throw refuses the call. */
  requestGate?: (context: HandlerContext) => Promise<void>;
  /** The context values of a call from the peer at `address`. */
  contextValues: (address: string | undefined) => ContextValues;
  /** Largest message received, in bytes. */
  maxMessageBytes: number;
  /** Largest message sent, in bytes. */
  maxSendMessageBytes: number;
  /** Largest timeout a client may ask for, in milliseconds. */
  maxTimeoutMs: number;
  /** How JSON messages (Connect) are read and written. */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** The compressions requests may use and answers are given in, as connect-es is told. */
  compressions: readonly Compression[];
  /** Messages smaller than this are sent uncompressed whatever the client accepts. */
  compressMinBytes: number;
  /**
   * The headers that let a page from `origin` read the answer of a call over HTTP/2 (over HTTP/1.1
   * the server has set them on the response already); undefined for an origin that gets none.
   */
  corsGrant?: (origin: string | string[]) => Record<string, string> | undefined;
}

/** The serving path: a router to register implementations with, then the calls to them. */
export interface ServingPath {
  /** Where services and methods are registered (connect-es's router interface). */
  readonly router: ConnectRouter;
  /**
   * Serves (or refuses) the call on `stream` and returns true; returns false for a request that
   * names no registered method, or is a CORS preflight, for the server's other endpoints.
   */
  take(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
  /** The same for a request over HTTP/1.1. */
  takeHttp1(req: IncomingMessage, res: ServerResponse): boolean;
}

type ServedSpec = MethodImplSpec;
/** The methods whose requests are streams of messages. */
type RequestStreamingSpec = Extract<ServedSpec, { kind: "client_streaming" | "bidi_streaming" }>;

/**
 * How a call's messages and status go on the wire: gRPC (enveloped protobuf, the status in
 * trailers), or Connect's unary protocol (the message is the body, protobuf or JSON; an error is
 * a JSON body with the HTTP status of its code; trailers are headers prefixed `trailer-`).
 */
interface Wire {
  readonly protocolName: "grpc" | "grpc-web" | "connect";
  readonly enveloped: boolean;
  /**
   * Where an enveloped call's status and trailers go: HTTP trailers (gRPC), or a last frame of the
   * body, gRPC-web's trailer frame or Connect's end-stream message.
   */
  readonly endFrame: "grpc-web" | "connect" | undefined;
  readonly json: boolean;
  /** The response's content type. */
  readonly contentType: string;
  /** The header naming the compression of the request's messages, and of the answer's. */
  readonly encodingHeader: "grpc-encoding" | "content-encoding" | "connect-content-encoding";
  /** The header listing the compressions the client accepts, in its order of preference. */
  readonly acceptEncodingHeader:
    | "grpc-accept-encoding"
    | "accept-encoding"
    | "connect-accept-encoding";
}

const grpcEncodings = {
  encodingHeader: "grpc-encoding",
  acceptEncodingHeader: "grpc-accept-encoding",
} as const;

const grpcWebWire: Wire = {
  protocolName: "grpc-web",
  enveloped: true,
  endFrame: "grpc-web",
  json: false,
  contentType: "application/grpc-web+proto",
  ...grpcEncodings,
};
/** The enveloped wires, by request content type. */
const envelopedWires = new Map<string, Wire>([
  ...["application/grpc", "application/grpc+proto", "application/grpc+json"].map(
    (contentType): [string, Wire] => [
      contentType,
      {
        protocolName: "grpc",
        enveloped: true,
        endFrame: undefined,
        json: contentType.endsWith("+json"),
        contentType,
        ...grpcEncodings,
      },
    ],
  ),
  ["application/grpc-web", grpcWebWire],
  ["application/grpc-web+proto", grpcWebWire],
  [
    "application/grpc-web+json",
    { ...grpcWebWire, json: true, contentType: "application/grpc-web+json" },
  ],
]);
const connectProto: Wire = {
  protocolName: "connect",
  enveloped: false,
  endFrame: undefined,
  json: false,
  contentType: "application/proto",
  encodingHeader: "content-encoding",
  acceptEncodingHeader: "accept-encoding",
};
const connectJson: Wire = {
  protocolName: "connect",
  enveloped: false,
  endFrame: undefined,
  json: true,
  contentType: "application/json",
  encodingHeader: "content-encoding",
  acceptEncodingHeader: "accept-encoding",
};
const connectStreamProto: Wire = {
  protocolName: "connect",
  enveloped: true,
  endFrame: "connect",
  json: false,
  contentType: "application/connect+proto",
  encodingHeader: "connect-content-encoding",
  acceptEncodingHeader: "connect-accept-encoding",
};
const connectStreamJson: Wire = {
  protocolName: "connect",
  enveloped: true,
  endFrame: "connect",
  json: true,
  contentType: "application/connect+json",
  encodingHeader: "connect-content-encoding",
  acceptEncodingHeader: "connect-accept-encoding",
};
const connectUnaryContentType = /^application\/(proto|json)(?:;\s*charset=utf-?8)?$/i;
// Connect's content types as clients spell them, read without the expressions above.
const connectUnaryWires = new Map([
  ["application/json", connectJson],
  ["application/proto", connectProto],
  ["application/json; charset=utf-8", connectJson],
]);
const connectStreamWires = new Map([
  ["application/connect+json", connectStreamJson],
  ["application/connect+proto", connectStreamProto],
]);
const connectStreamContentType = /^application\/connect\+(proto|json)(?:;\s*charset=utf-?8)?$/i;
/** What a client is told when its request body cannot be read. */
const requestFaults = {
  undecodable: (typeName: string, reason: string) =>
    `cannot decode message ${typeName} from binary: ${reason}`,
  compressedWithoutEncoding:
    "a request message is flagged compressed, but the request names no compression",
  incompleteEnvelope: "protocol error: incomplete envelope",
  undecompressable: "cannot decompress the request message",
} as const;
const envelopedContentType =
  /^(application\/grpc(?:-web)?(?:\+(?:json|proto))?)(?:; ?charset=utf-?8)?$/i;
// Abort reasons: aborting without one makes Node construct a DOMException (with a stack) per call.
const callEnded = new ConnectError("the call has ended", Code.Canceled);
const clientGone = new ConnectError("the client closed the call", Code.Canceled);

/** Creates the serving path of a server. */
export function createServingPath(options: ServingPathOptions): ServingPath {
  const methods = new Map<string, ServedSpec>();
  const serve = createCallServer(options);
  const { compressions } = options;
  const router: ConnectRouter = {
    // connect-es's handlers, of which there are none: the path serves the calls itself.
    handlers: [],
    service(service, implementation, serviceOptions) {
      refuseOptions(serviceOptions, service.typeName);
      const spec = createServiceImplSpec(service, implementation);
      for (const method of Object.values(spec.methods)) add(method);
      return this;
    },
    rpc(method, implementation, methodOptions) {
      refuseOptions(methodOptions, `${method.parent.typeName}/${method.name}`);
      add(createMethodImplSpec(method, implementation));
      return this;
    },
  };
  const add = (spec: ServedSpec) => {
    const path = `/${spec.method.parent.typeName}/${spec.method.name}`;
    if (methods.has(path)) throw new Error(`${path} is registered twice`);
    methods.set(path, spec);
  };
  return {
    router,
    take(stream, headers) {
      const path = headers[":path"];
      const method = headers[":method"];
      if (path === undefined || method === "OPTIONS") return false;
      const route = routeOf(methods, method, path, headers, compressions);
      if (route === undefined) return false;
      // A browser's call: its answer carries the CORS grant of its origin, if it has one.
      const origin = headers.origin;
      const cors = origin === undefined ? undefined : options.corsGrant?.(origin);
      if ("refused" in route) {
        stream.respond({ ...cors, ":status": route.refused }, trailersOnly);
        return true;
      }
      serve(route, stream, headers, stream.session?.socket?.remoteAddress, path, cors);
      return true;
    },
    takeHttp1(req, res) {
      const path = req.url;
      if (path === undefined || req.method === "OPTIONS") return false;
      const route = routeOf(methods, req.method, path, req.headers, compressions);
      if (route === undefined) return false;
      if ("refused" in route) {
        refuseHttp1(res, route.refused);
        return true;
      }
      // A bidi stream: HTTP/1.1 cannot carry it both ways at once, and a client waiting for an
      // answer before its next message would hang. It is refused (505), and the connection
      // closed, as connect-es refuses it.
      if (route.spec.kind === "bidi_streaming") {
        res.setHeader("connection", "close");
        refuseHttp1(res, 505);
        return true;
      }
      serve(route, new Http1Exchange(req, res), req.headers, req.socket.remoteAddress, path);
      return true;
    },
  };
}

// Options per service or method (connect-es's handler options) would need a serving path of their
// own; the server's options apply to every call instead.
function refuseOptions(options: object | undefined, name: string): void {
  if (options !== undefined && Object.keys(options).length > 0) {
    throw new Error(`${name}: options per service are not supported; set them on the server`);
  }
}

/** Answers an HTTP/1.1 request with `status` alone. */
function refuseHttp1(res: ServerResponse, status: number): void {
  res.sendDate = false;
  res.writeHead(status, { "content-length": 0 });
  res.end();
}

/** A call this path serves: its method, its wire, and for a GET the message from its query. */
interface Route {
  spec: ServedSpec;
  wire: Wire;
  compression: Compressions;
  query?: Buffer;
  /** Why a GET's message cannot be read from its query (answered after the request gate). */
  queryError?: ConnectError;
}

/**
 * A request to a method that no wire takes, answered with an HTTP status alone as connect-es
 * answers it: 405 (an HTTP method the method does not take), 415 (a content type no protocol has).
 */
interface Refused {
  refused: 405 | 415;
}
const methodNotAllowed: Refused = { refused: 405 };
const unsupportedMediaType: Refused = { refused: 415 };

/**
 * What a call's messages are compressed with: its request's (null: none) and its answer's; and
 * why the call is refused, when its request names a compression the server does not take.
 */
interface Compressions {
  readonly request: Compression | null;
  readonly response: Compression | null;
  readonly refusal?: ConnectError;
}
const uncompressed: Compressions = { request: null, response: null };

/**
 * The compressions of a call whose request names `requested` (its messages' compression, if any)
 * and `accepted` (the compressions its client takes, in its order of preference), chosen from
 * `available` as connect-es chooses them (gRPC's compression.md): without a list, the answer is
 * compressed as the request is. A `requested` that is not available refuses the call
 * (unimplemented, naming in `acceptHeader` those the server takes, as gRPC's compression.md and
 * the Connect protocol say).
 */
function negotiate(
  available: readonly Compression[],
  requested: string | string[] | undefined,
  accepted: string | string[] | undefined,
  acceptHeader: Wire["acceptEncodingHeader"],
): Compressions {
  let request: Compression | null = null;
  if (requested !== undefined && requested !== "identity") {
    request = available.find((compression) => compression.name === requested) ?? null;
    if (request === null) {
      const taken = available.map((compression) => compression.name).join(",");
      return {
        request: null,
        response: null,
        refusal: new ConnectError(
          `unknown compression "${String(requested)}": supported encodings are ${taken}`,
          Code.Unimplemented,
          { [acceptHeader]: taken },
        ),
      };
    }
  }
  const names = Array.isArray(accepted) ? accepted.join(",") : accepted;
  if (names === undefined || names === "") {
    return request === null ? uncompressed : { request, response: request };
  }
  let response: Compression | null = null;
  for (const name of names.split(",")) {
    const trimmed = name.trim();
    response = available.find((compression) => compression.name === trimmed) ?? null;
    if (response !== null) break;
  }
  return request === null && response === null ? uncompressed : { request, response };
}

/**
 * The route of a request to `path` by HTTP `method`, or why it is refused; undefined when `path`
 * names no method (for the server's other endpoints, or its 404).
 */
function routeOf(
  methods: ReadonlyMap<string, ServedSpec>,
  method: string | undefined,
  path: string,
  headers: IncomingHttpHeaders,
  compressions: readonly Compression[],
): Route | Refused | undefined {
  const queryAt = path.indexOf("?");
  const spec = methods.get(queryAt < 0 ? path : path.slice(0, queryAt));
  if (spec === undefined) return undefined;
  if (method === "GET") return connectGetOf(spec, path, queryAt, headers, compressions);
  if (method !== "POST") return methodNotAllowed;
  const wire = wireOf(spec, headers["content-type"] ?? "");
  if (wire === undefined) return unsupportedMediaType;
  const compression = negotiate(
    compressions,
    headers[wire.encodingHeader],
    headers[wire.acceptEncodingHeader],
    wire.acceptEncodingHeader,
  );
  return { spec, wire, compression };
}

/**
 * The wire of a POST to `spec`'s method with `contentType`: gRPC or gRPC-web (protobuf or JSON),
 * or Connect's unary or streaming protocol, as the method's kind asks; undefined for a content
 * type none takes (gRPC-web's text encoding included, as connect-es).
 */
function wireOf(spec: ServedSpec, contentType: string): Wire | undefined {
  const unary = spec.kind === "unary";
  const exact =
    envelopedWires.get(contentType) ??
    (unary ? connectUnaryWires : connectStreamWires).get(contentType);
  if (exact !== undefined) return exact;
  const enveloped = envelopedWireOf(contentType);
  if (enveloped !== undefined) return enveloped;
  const connect = (unary ? connectUnaryContentType : connectStreamContentType).exec(contentType);
  if (connect === null) return undefined;
  const json = connect[1]?.toLowerCase() === "json";
  if (unary) return json ? connectJson : connectProto;
  return json ? connectStreamJson : connectStreamProto;
}

/** The wire of a gRPC or gRPC-web content type spelt otherwise (case, a JSON charset). */
function envelopedWireOf(contentType: string): Wire | undefined {
  const match = envelopedContentType.exec(contentType);
  const base = match?.[1]?.toLowerCase();
  if (base === undefined) return undefined;
  // Only JSON may name its charset.
  if (base.length < contentType.length && !base.endsWith("+json")) return undefined;
  return envelopedWires.get(base);
}

/**
 * A Connect unary GET (a method without side effects, its message in the query, protobuf or
 * JSON), with its message's bytes; or why it is refused.
 */
function connectGetOf(
  spec: ServedSpec,
  path: string,
  queryAt: number,
  headers: IncomingHttpHeaders,
  compressions: readonly Compression[],
): Route | Refused {
  if (spec.kind !== "unary") return methodNotAllowed;
  if (spec.method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) {
    return methodNotAllowed;
  }
  // A GET needs no content type; one it names must be Connect's unary one.
  const contentType = headers["content-type"];
  if (contentType !== undefined && !connectUnaryContentType.test(contentType)) {
    return unsupportedMediaType;
  }
  const params = new URLSearchParams(queryAt < 0 ? "" : path.slice(queryAt + 1));
  const encoding = params.get("encoding");
  if (encoding !== "proto" && encoding !== "json") return unsupportedMediaType;
  const compression = negotiate(
    compressions,
    params.get("compression") ?? undefined,
    headers["accept-encoding"],
    "accept-encoding",
  );
  const wire = encoding === "json" ? connectJson : connectProto;
  const message = params.get("message") ?? "";
  if (params.get("base64") !== "1") {
    return { spec, wire, compression, query: Buffer.from(message, "utf8") };
  }
  try {
    return { spec, wire, compression, query: Buffer.from(base64Decode(message)) };
  } catch {
    const queryError = new ConnectError(
      "the message query parameter is not valid base64",
      Code.InvalidArgument,
    );
    return { spec, wire, compression, query: Buffer.alloc(0), queryError };
  }
}

function createCallServer(options: ServingPathOptions) {
  const { interceptors, requestGate, maxTimeoutMs } = options;
  // Each method's handler wrapped in the interceptors, once: a call finds its Call on the request.
  // Those that act on streams only would pass a unary call straight on; its chain leaves them out.
  const unaryInterceptors = interceptors.filter((interceptor) => !actsOnStreamsOnly(interceptor));
  const shared: SharedByCalls = {
    maxMessageBytes: options.maxMessageBytes,
    maxSendMessageBytes: options.maxSendMessageBytes,
    jsonOptions: options.jsonOptions,
    compressMinBytes: options.compressMinBytes,
    unaryChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "unary" }>) =>
      chain(unaryInterceptors, unaryHandler(spec)),
    ),
    streamChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "server_streaming" }>) =>
      chain(interceptors, serverStreamingHandler(spec)),
    ),
    clientStreamChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "client_streaming" }>) =>
      chain(interceptors, unaryHandler(spec)),
    ),
    bidiChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "bidi_streaming" }>) =>
      chain(interceptors, bidiStreamingHandler(spec)),
    ),
  };

  return (
    route: Route,
    stream: Exchange,
    headers: IncomingHttpHeaders,
    address: string | undefined,
    path: string,
    cors?: Record<string, string>,
  ): void => {
    const { wire } = route;
    const header = new IncomingHeaders(headers);
    // A stream may stay open for hours: its headers are kept compact meanwhile.
    if (route.spec.kind !== "unary") header.compact();
    const timeout =
      wire.protocolName !== "connect"
        ? parseGrpcTimeout(header.get("grpc-timeout"), maxTimeoutMs)
        : parseConnectTimeout(header.get("connect-timeout-ms"), maxTimeoutMs);
    const deadline =
      timeout.timeoutMs === undefined || timeout.error ? undefined : Date.now() + timeout.timeoutMs;
    const call = new Call(
      shared,
      route,
      stream,
      `http://${headers[":authority"] ?? headers.host ?? "localhost"}${path}`,
      header,
      deadline,
      options.contextValues(address),
      cors,
    );
    // The gate runs after the headers, before the body is read; then a compression the server
    // does not take, a timeout malformed or out of range, or a GET's query that does not decode
    // refuses the call (in that order, as connect-es).
    const refusal = route.compression.refusal ?? timeout.error ?? route.queryError;
    if (requestGate === undefined) call.read(refusal);
    else {
      requestGate(new CallContext(call, call)).then(
        () => call.read(refusal),
        (error: unknown) => call.finish(error),
      );
    }
  };
}

/** What the calls of one server share: each method's chain, the message size limits, JSON options. */
interface SharedByCalls {
  maxMessageBytes: number;
  maxSendMessageBytes: number;
  jsonOptions: Partial<JsonReadOptions & JsonWriteOptions> | undefined;
  compressMinBytes: number;
  unaryChainOf: (spec: Extract<ServedSpec, { kind: "unary" }>) => Chain<UnaryResponse>;
  streamChainOf: (spec: Extract<ServedSpec, { kind: "server_streaming" }>) => Chain<StreamResponse>;
  clientStreamChainOf: (
    spec: Extract<ServedSpec, { kind: "client_streaming" }>,
  ) => Chain<UnaryResponse>;
  bidiChainOf: (spec: Extract<ServedSpec, { kind: "bidi_streaming" }>) => Chain<StreamResponse>;
}

const callOfStream = Symbol("call");

/**
 * What a call is answered on: an HTTP/2 stream, or the same shape over an HTTP/1.1 request and
 * response (Http1Exchange).
 */
interface Exchange {
  readonly closed: boolean;
  readonly destroyed: boolean;
  /** The request body has ended (and was read, or was empty). */
  readonly readableEnded: boolean;
  on(event: "data", listener: (this: CallStream, chunk: Buffer) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(
    event: "end" | "close" | "drain" | "wantTrailers",
    listener: (this: CallStream) => void,
  ): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: Node's own signature for any listener
  off(event: string, listener: (...args: any[]) => void): unknown;
  respond(
    headers: Record<string, string | number>,
    options?: { endStream?: boolean; waitForTrailers?: boolean; sendDate?: boolean },
  ): void;
  write(chunk: Uint8Array): boolean;
  end(chunk?: Uint8Array | string): unknown;
  sendTrailers(headers: Record<string, string | number>): void;
  pause(): unknown;
  resume(): unknown;
  close(code?: number): void;
}

/**
 * An HTTP/1.1 request and its response as the HTTP/2 stream a call is answered on: the request's
 * body events, the response's close and drain, `respond` as `writeHead`. gRPC's trailers go in
 * the chunked body's trailer section (as connect-es sends them over HTTP/1.1); the other wires
 * put theirs in the headers or the body.
 */
class Http1Exchange {
  private readonly req: IncomingMessage;
  private readonly res: ServerResponse;
  /** Asks for the trailers once the body has been written (`waitForTrailers`). */
  private wantTrailers: ((this: CallStream) => void) | undefined;
  private waitForTrailers = false;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.req = req;
    this.res = res;
  }

  // The call's listeners are the same functions for every call, with the emitter as `this`: the
  // request and the response hold the call as the stream would.
  set [callOfStream](call: Call) {
    (this.req as unknown as CallStream)[callOfStream] = call;
    (this.res as unknown as CallStream)[callOfStream] = call;
  }

  get closed(): boolean {
    return this.res.closed;
  }

  get destroyed(): boolean {
    return this.res.destroyed;
  }

  get readableEnded(): boolean {
    return this.req.readableEnded;
  }

  /** The body's events and errors come from the request; the end and drain, from the response. */
  on(event: string, listener: (...args: never[]) => void): this {
    if (event === "wantTrailers") this.wantTrailers = listener as (this: CallStream) => void;
    else this.emitterOf(event).on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  // biome-ignore lint/suspicious/noExplicitAny: Node's own signature for any listener
  off(event: string, listener: (...args: any[]) => void): this {
    this.emitterOf(event).off(event, listener);
    return this;
  }

  respond(
    headers: Record<string, string | number>,
    options?: { endStream?: boolean; waitForTrailers?: boolean },
  ): void {
    const fields: Record<string, string | number> = {};
    for (const name in headers) {
      if (!name.startsWith(":")) fields[name] = headers[name] as string | number;
    }
    this.res.sendDate = false;
    this.waitForTrailers = options?.waitForTrailers === true;
    this.res.writeHead(Number(headers[":status"] ?? 200), fields);
    if (options?.endStream) this.res.end();
  }

  write(chunk: Uint8Array): boolean {
    return this.res.write(chunk);
  }

  end(chunk?: Uint8Array | string): this {
    if (this.waitForTrailers) {
      if (chunk !== undefined) this.res.write(chunk);
      this.wantTrailers?.call(this.res as unknown as CallStream);
      this.res.end();
    } else if (chunk === undefined) this.res.end();
    else this.res.end(chunk);
    return this;
  }

  sendTrailers(headers: Record<string, string | number>): void {
    this.res.addTrailers(headers as Record<string, string>);
  }

  pause(): this {
    this.req.pause();
    return this;
  }

  resume(): this {
    this.req.resume();
    return this;
  }

  close(): void {
    this.res.destroy();
  }

  private emitterOf(event: string): IncomingMessage | ServerResponse {
    return event === "close" || event === "drain" ? this.res : this.req;
  }
}

/** A call's HTTP/2 stream, which holds its call for the listeners below. */
type CallStream = Exchange & { [callOfStream]?: Call };

// The listeners every call puts on its stream: the same functions for all calls (the stream is
// their `this`), instead of closures made for each call.
function onCallData(this: CallStream, chunk: Buffer): void {
  this[callOfStream]?.receive(chunk);
}
function onCallEnd(this: CallStream): void {
  this[callOfStream]?.received();
}
function onCallClose(this: CallStream): void {
  this[callOfStream]?.clientClosed();
}
function onWantTrailers(this: CallStream): void {
  this[callOfStream]?.sendTrailers();
}
// A reset or a broken connection; the stream closes next.
function ignore(): void {}

const okTrailers = { "grpc-status": "0" };
// How responses are sent (Node only reads these). No `date` header: gRPC has no use for it, and
// Node would add one to every response (about 2 % of a unary call's CPU).
const withTrailers = { waitForTrailers: true, sendDate: false };
const trailersOnly = { endStream: true, sendDate: false };
const answerWithBody = { endStream: false, sendDate: false };

/**
 * One call being answered on its HTTP/2 stream. What only some calls use is made when first asked
 * for: the signal (and with it the watch for a client that goes away, for unary calls) and the URL.
 */
class Call {
  /** True once the call has been answered in full, failed, or abandoned by its client. */
  ended = false;
  readonly method: DescMethod;
  readonly stream: Exchange;
  readonly header: Headers;
  readonly contextValues: ContextValues;
  /** Absolute deadline (Date.now() scale), if the client set a timeout. */
  readonly deadline: number | undefined;
  private readonly shared: SharedByCalls;
  private readonly spec: ServedSpec;
  readonly url: string;
  readonly requestMethod: "POST" | "GET";
  /** A GET's message, from its query. */
  private query: Buffer | undefined;
  readonly wire: Wire;
  private readonly compression: Compressions;
  /** The request's message is flagged compressed (enveloped wires). */
  private compressed = false;
  /** The request messages of a client- or bidi-streaming call. */
  private requests: RequestStream | undefined;
  /** The CORS grant of a browser's call over HTTP/2, added to its answer's headers. */
  private readonly cors: Record<string, string> | undefined;
  private headersSent = false;
  private controller: AbortController | undefined;
  private endReason: ConnectError | undefined;
  /** Ends the stream answer being sent, when the call ends first. */
  private stopStream: ((reason: ConnectError) => void) | undefined;
  private watchingClient = false;
  private readonly timer: NodeJS.Timeout | undefined;
  // The response's header and trailer, made when a handler or interceptor first asks for them.
  private setHeader: Headers | undefined;
  private setTrailer: Headers | undefined;
  // The trailers to send when the stream asks for them; the success status when undefined.
  private trailersToSend: Record<string, string | number> | undefined;
  // The request body as it comes (made with its first chunk), and the message length its envelope
  // announces (-1 until read).
  private body: EnvelopeBuffer | undefined;
  private announced = -1;
  /** The message bytes received and sent, as on the wire (see wireFactsOf). */
  requestBytes = 0;
  responseBytes = 0;

  constructor(
    shared: SharedByCalls,
    route: Route,
    stream: Exchange,
    url: string,
    header: Headers,
    deadline: number | undefined,
    contextValues: ContextValues,
    cors: Record<string, string> | undefined,
  ) {
    const { spec, query } = route;
    this.cors = cors;
    this.shared = shared;
    this.spec = spec;
    this.method = spec.method;
    this.stream = stream;
    this.url = url;
    this.query = query;
    this.requestMethod = query === undefined ? "POST" : "GET";
    if (query !== undefined) this.requestBytes = query.length;
    this.header = header;
    this.wire = route.wire;
    this.compression = route.compression;
    this.deadline = deadline;
    this.contextValues = contextValues;
    // A request an interceptor rebuilt field by field keeps its context values, and so its call.
    contextValues.set(callKey, this);
    (stream as CallStream)[callOfStream] = this;
    stream.on("error", ignore);
    // A stream's writes wait for a client that may go away meanwhile.
    if (spec.kind !== "unary") this.watchClient();
    if (deadline !== undefined) {
      this.timer = setTimeout(
        () => this.finish(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        deadline - Date.now(),
      );
    }
  }

  /** Aborted when the call ends, with why; made when first asked for. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.endReason !== undefined) this.controller.abort(this.endReason);
      else this.watchClient();
    }
    return this.controller.signal;
  }

  /** How the call's messages are read and written as JSON; undefined for protobuf. */
  private get json(): Partial<JsonReadOptions & JsonWriteOptions> | undefined {
    return this.wire.json ? (this.shared.jsonOptions ?? {}) : undefined;
  }

  get responseHeader(): Headers {
    this.setHeader ??= new Headers();
    return this.setHeader;
  }

  get responseTrailer(): Headers {
    this.setTrailer ??= new Headers();
    return this.setTrailer;
  }

  /**
   * Starts reading the request, unless `refusal` refuses the call (a compression the server does
   * not take, a timeout out of range).
   */
  read(refusal: ConnectError | undefined): void {
    if (refusal !== undefined) {
      // What a refusal names for the client (the compressions the server takes) is a protocol
      // header, which an error's metadata does not carry out: it goes with the answer's headers.
      refusal.metadata.forEach((value, name) => {
        this.responseHeader.set(name, value);
      });
      this.finish(refusal);
      return;
    }
    if (this.ended) return;
    const query = this.query;
    if (query !== undefined) {
      this.query = undefined;
      // A GET has no body to read; its message came in the query.
      this.stream.resume();
      if (query.length > this.shared.maxMessageBytes) {
        this.finish(messageTooLarge(query.length, "readMaxBytes", this.shared.maxMessageBytes));
      } else void this.answer(query, this.compression.request !== null);
      return;
    }
    // A Connect unary body announced larger than the limit is refused before it is read.
    const length = Number(this.header.get("content-length") ?? -1);
    if (!this.wire.enveloped && length > this.shared.maxMessageBytes) {
      this.finish(messageTooLarge(length, "readMaxBytes", this.shared.maxMessageBytes));
      return;
    }
    const { spec } = this;
    if (spec.kind === "client_streaming" || spec.kind === "bidi_streaming") {
      // The handler starts now and reads the messages as they come.
      this.requests = new RequestStream(this, this.shared.maxMessageBytes);
      void this.answerStreaming(spec, this.requests);
    }
    // An empty body may have ended while the request gate ran (its end is not read twice).
    if (this.stream.readableEnded) {
      this.received();
      return;
    }
    this.stream.on("data", onCallData);
    this.stream.on("end", onCallEnd);
  }

  /**
   * Takes a chunk of the request body, which must be a single envelope of at most
   * `maxMessageBytes`, compressed only if the request names a compression: the call fails as soon
   * as it cannot be.
   */
  receive(chunk: Buffer): void {
    this.requestBytes += chunk.length;
    if (this.requests !== undefined) {
      this.requests.push(chunk);
      return;
    }
    let body = this.body;
    if (body === undefined) {
      body = new EnvelopeBuffer();
      this.body = body;
    }
    body.push(chunk);
    const limit = this.shared.maxMessageBytes;
    if (!this.wire.enveloped) {
      // A Connect unary body is the message itself.
      if (body.size > limit) this.finish(messageTooLarge(body.size, "readMaxBytes", limit));
      return;
    }
    if (this.announced < 0) {
      const announced = body.announced();
      if (announced < 0) return;
      if (body.flags() & compressedFlag) {
        if (this.compression.request === null) {
          this.finish(
            // The gRPC specification's code for it (a protocol error), as connect-es answers too.
            new ConnectError(requestFaults.compressedWithoutEncoding, Code.Internal),
          );
          return;
        }
        this.compressed = true;
      }
      this.announced = announced;
      if (announced > limit) {
        this.finish(messageTooLarge(announced, "readMaxBytes", limit));
        return;
      }
    }
    if (body.size > envelopeHeaderBytes + this.announced + envelopeHeaderBytes) {
      this.finish(extraMessage());
    }
  }

  /** The request body has ended: answers its message, or fails the call when it is not whole. */
  received(): void {
    if (this.ended) return;
    if (this.requests !== undefined) {
      this.requests.end();
      return;
    }
    const body = this.body;
    this.body = undefined;
    if (!this.wire.enveloped) {
      void this.answer(body?.all() ?? Buffer.alloc(0), this.compression.request !== null);
      return;
    }
    if (body === undefined || body.size === 0) {
      this.finish(
        new ConnectError(
          "protocol error: missing input message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    const frame = body.take();
    if (frame !== undefined && body.size >= envelopeHeaderBytes) {
      this.finish(extraMessage());
      return;
    }
    if (frame === undefined || body.size > 0) {
      this.finish(new ConnectError(requestFaults.incompleteEnvelope, Code.InvalidArgument));
      return;
    }
    void this.answer(messageOf(frame), this.compressed);
  }

  /**
   * Runs the method's chain on the request message (`bytes`, `compressed` with the request's
   * compression) and sends what it answers.
   */
  private async answer(bytes: Buffer, compressed: boolean): Promise<void> {
    const { spec, method, shared } = this;
    try {
      const json = this.json;
      const message = compressed ? await this.decompress(bytes) : bytes;
      // The call may have ended (deadline, client gone) while its message was decompressed.
      if (this.ended) return;
      const input = decode(method.input, message, json);
      const max = shared.maxSendMessageBytes;
      if (spec.kind === "unary") {
        const res = await shared.unaryChainOf(spec)(new CallRequest(this, false, input));
        if (this.ended) return;
        let answer = this.wire.enveloped
          ? encode(method.output, res.message, max, json)
          : serialize(method.output, res.message, max, json);
        if (this.compression.response !== null) {
          answer = Buffer.isBuffer(answer)
            ? await this.compressFrame(answer)
            : await this.compressBody(answer);
          if (this.ended) return;
        }
        this.sendUnary(answer, res);
      } else if (spec.kind === "server_streaming") {
        const res = await shared.streamChainOf(spec)(new CallRequest(this, true, single(input)));
        if (this.ended) abandon(res);
        else void this.sendStream(res);
      }
    } catch (error) {
      this.finish(error);
    }
  }

  /**
   * Runs the chain of a client- or bidi-streaming method on its request messages as they come and
   * sends what it answers: one message (client streaming) or a stream of them, then the status.
   */
  private async answerStreaming(
    spec: RequestStreamingSpec,
    requests: RequestStream,
  ): Promise<void> {
    const { shared } = this;
    try {
      const req = new CallRequest(this, true, requests);
      if (spec.kind === "bidi_streaming") {
        const res = await shared.bidiChainOf(spec)(req);
        if (this.ended) abandon(res);
        else void this.sendStream(res);
        return;
      }
      const res = await shared.clientStreamChainOf(spec)(req);
      if (this.ended) return;
      const { header, trailer } = this.partsOf(res);
      void this.sendStream({
        stream: true,
        service: res.service,
        method: res.method,
        header,
        trailer,
        message: single(res.message),
      } as unknown as StreamResponse);
    } catch (error) {
      this.finish(error);
    }
  }

  /**
   * The message in `frame`, one envelope of a streaming request, decompressed and decoded; `skip`
   * for the end-stream envelope a Connect client may send last.
   */
  async requestMessage(frame: Buffer): Promise<unknown> {
    const flags = frame[0] ?? 0;
    if (this.wire.endFrame === "connect" && (flags & endStreamFlag) === endStreamFlag) return skip;
    let bytes = messageOf(frame);
    if (flags & compressedFlag) {
      if (this.compression.request === null) {
        throw new ConnectError(requestFaults.compressedWithoutEncoding, Code.Internal);
      }
      bytes = await this.decompress(bytes);
    }
    return decode(this.method.input, bytes, this.json);
  }

  /** The request's message, decompressed within the size limit. */
  private async decompress(bytes: Buffer): Promise<Buffer> {
    const compression = this.compression.request as Compression;
    try {
      const message = await compression.decompress(bytes, this.shared.maxMessageBytes);
      return Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    } catch (error) {
      // Too large once decompressed is resource_exhausted; anything else is the client's bytes.
      if (error instanceof ConnectError && error.code === Code.ResourceExhausted) throw error;
      throw new ConnectError(requestFaults.undecompressable, Code.InvalidArgument);
    }
  }

  /** `frame` with its message compressed, when the answer is and the message is large enough. */
  private async compressFrame(frame: Buffer): Promise<Buffer> {
    const compression = this.compression.response;
    if (compression === null || frame.length - envelopeHeaderBytes < this.shared.compressMinBytes) {
      return frame;
    }
    return envelope(await compression.compress(messageOf(frame)), compressedFlag);
  }

  /** A Connect unary answer's body, compressed when the answer is and the body is large enough. */
  private async compressBody(body: Body): Promise<Body> {
    const compression = this.compression.response;
    if (compression === null || body.length < this.shared.compressMinBytes) return body;
    const data = await compression.compress(
      typeof body.data === "string" ? Buffer.from(body.data) : body.data,
    );
    return { data, length: data.byteLength, encoding: compression.name };
  }

  /** Answers with `res`: the handler's answer, or one an interceptor put in its place. */
  sendUnary(frame: Buffer | Body, res: UnaryResponse): void {
    const stream = this.stream;
    if (!stream.destroyed) {
      const { header, trailer } = this.partsOf(res);
      this.headersSent = true;
      if (!Buffer.isBuffer(frame)) {
        // Connect unary: the message is the body; trailers go as headers prefixed "trailer-".
        const fields = toObject(header, {
          ":status": 200,
          "content-type": this.wire.contentType,
          "content-length": frame.length,
        });
        if (frame.encoding !== undefined) fields["content-encoding"] = frame.encoding;
        this.respond(toObject(prefixedTrailers(trailer), fields), answerWithBody);
        this.responseBytes += frame.length;
        endWith(stream, frame.data);
        this.end(callEnded);
        return;
      }
      this.responseBytes += frame.length;
      if (this.wire.endFrame === "grpc-web") {
        this.respond(this.responseHeaders(header), answerWithBody);
        // The message and the trailers in one write: two cost about 6 µs more a call under
        // h2load (CPU profile).
        const trailers =
          trailer === undefined ? okTrailerFrame : trailerFrame(grpcStatus(trailer, undefined));
        endWith(stream, Buffer.concat([frame, trailers], frame.length + trailers.length));
        this.end(callEnded);
        return;
      }
      if (trailer !== undefined) this.trailersToSend = toObject(trailer, { "grpc-status": "0" });
      this.respond(this.responseHeaders(header), withTrailers);
      stream.on("wantTrailers", onWantTrailers);
      stream.end(frame);
    }
    this.end(callEnded);
  }

  /**
   * The header and trailer to send with `res`. The handler's own answer, or a copy of it
   * ({ ...res }, which leaves out its getters), uses the call's, if anything made them; another
   * answer brings its own.
   */
  private partsOf(res: UnaryResponse | StreamResponse): { header?: Headers; trailer?: Headers } {
    if (res instanceof CallAnswer) return { header: this.setHeader, trailer: this.setTrailer };
    return { header: res.header ?? this.setHeader, trailer: res.trailer ?? this.setTrailer };
  }

  /** Sends the answer's headers (and the call's CORS grant, if any). */
  private respond(
    headers: Record<string, string | number>,
    options: { endStream?: boolean; waitForTrailers?: boolean; sendDate?: boolean },
  ): void {
    const cors = this.cors;
    if (cors === undefined) {
      this.stream.respond(headers, options);
      return;
    }
    const vary = headers.vary;
    this.stream.respond(
      { ...headers, ...cors, vary: vary === undefined ? "Origin" : `${vary}, Origin` },
      options,
    );
  }

  /** Sends the trailers the call ended with, when its stream asks for them. */
  sendTrailers(): void {
    this.stream.sendTrailers(this.trailersToSend ?? okTrailers);
  }

  /**
   * Writes the messages of a stream answer as they come, waiting for the client to read them, then
   * ends the call with the answer's trailer, or with the error the stream fails with. Its caller
   * does not wait for it: a watch holds this one suspended function, not a chain of them.
   */
  async sendStream(res: StreamResponse): Promise<void> {
    const stream = this.stream;
    // The call's end (client gone, deadline) ends the wait for the next message too.
    const messages = stopStreamOn(res.message, (stop) => {
      if (this.ended) stop(this.endReason);
      else this.stopStream = stop;
      return () => {
        this.stopStream = undefined;
      };
    })[Symbol.asyncIterator]();
    try {
      for (;;) {
        // Streams with a message ready take turns with other work (see waitTurn).
        await waitTurn();
        let next: IteratorResult<unknown> | undefined = await messages.next();
        if (this.ended) return;
        if (next.done) break;
        let frame = frameOf(
          this.method.output,
          next.value,
          this.shared.maxSendMessageBytes,
          this.json,
        );
        // A message many streams send (a change, a snapshot page) is encoded once for all of
        // them, and goes out uncompressed: compressed for each stream, it would cost every one
        // of them the work that sharing saves. So does one marked by sentUncompressed.
        const shared = isShared(next.value) || isMarkedUncompressed(next.value);
        // The message is let go of before waiting for a slow reader: a suspended async function
        // keeps its locals alive (V8), and the bytes are all the stream needs now.
        next = undefined;
        if (this.compression.response !== null && !shared) {
          frame = await this.compressFrame(frame);
          if (this.ended) return;
        }
        if (!this.headersSent) {
          this.headersSent = true;
          const body = this.wire.endFrame === undefined ? withTrailers : answerWithBody;
          this.respond(this.responseHeaders(this.partsOf(res).header), body);
        }
        this.responseBytes += frame.length;
        if (!stream.write(frame)) await drained(stream);
      }
    } catch (error) {
      messages.return?.().catch(() => {});
      this.finish(error);
      return;
    }
    this.finish(undefined, this.partsOf(res).trailer);
  }

  /** Ends the call with `error`, or with success and `trailer`; later calls do nothing. */
  finish(error: unknown, trailer: Headers | undefined = this.setTrailer): void {
    if (this.ended) return;
    const stream = this.stream;
    const status = error === undefined ? undefined : toConnectError(error);
    this.end(status ?? callEnded);
    if (stream.destroyed || stream.closed) return;
    if (!this.wire.enveloped) {
      this.finishConnect(
        status ?? new ConnectError("the call ended without an answer", Code.Internal),
        trailer,
      );
      return;
    }
    if (this.wire.endFrame !== undefined) {
      // gRPC-web and Connect streams: the headers (if not sent yet), then the status and trailers
      // as the body's last frame: gRPC-web's trailer frame, or Connect's end-stream message (the
      // trailers as its metadata, the error, if any, as Connect's JSON).
      if (!this.headersSent) {
        this.headersSent = true;
        this.respond(this.responseHeaders(this.setHeader), answerWithBody);
      }
      stream.end(
        this.wire.endFrame === "grpc-web"
          ? trailerFrame(grpcStatus(trailer, status))
          : envelope(
              Buffer.from(
                JSON.stringify(
                  endStreamToJson(new Headers(trailer), status, this.shared.jsonOptions ?? {}),
                ),
              ),
              endStreamFlag,
            ),
      );
    } else if (!this.headersSent) {
      // Trailers-only: the status goes with the headers, and nothing follows.
      this.headersSent = true;
      const fields = grpcStatus(trailer, status);
      this.respond(toObject(fields, this.responseHeaders(this.setHeader)), trailersOnly);
    } else {
      this.trailersToSend = toObject(grpcStatus(trailer, status), {});
      stream.on("wantTrailers", onWantTrailers);
      stream.end();
    }
    this.stopReading();
  }

  /** What the client still sends is not read. */
  private stopReading(): void {
    const stream = this.stream;
    stream.off("data", onCallData);
    stream.off("end", onCallEnd);
    stream.resume();
  }

  /**
   * Answers a Connect unary call with `error`: the HTTP status of its code, its metadata and the
   * call's header and trailer (prefixed), and the error as JSON, as connect-es answers it.
   */
  private finishConnect(error: ConnectError, trailer: Headers | undefined): void {
    const stream = this.stream;
    if (this.headersSent) {
      stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.headersSent = true;
    const header = new Headers(this.setHeader);
    if (!error.isWireError) mergeNonProtocolHeaders(header, error.metadata);
    const body = errorToJsonBytes(error, this.shared.jsonOptions ?? {});
    const fields = toObject(header, {
      ":status": codeToHttpStatus(error.code),
      "content-type": "application/json",
      "content-length": body.byteLength,
    });
    this.respond(toObject(prefixedTrailers(trailer), fields), answerWithBody);
    endWith(stream, body);
    this.stopReading();
  }

  /** The client closed or reset the stream. */
  clientClosed(): void {
    if (!this.ended) this.end(clientGone);
  }

  private end(reason: ConnectError): void {
    this.ended = true;
    this.endReason = reason;
    // A handler waiting for its next request message learns why the call ended.
    this.requests?.fail(reason);
    clearTimeout(this.timer);
    const controller = this.controller;
    if (controller !== undefined && !controller.signal.aborted) controller.abort(reason);
    // After the signal: what observes the stream's end reads from it why the call ended.
    const stopStream = this.stopStream;
    if (stopStream !== undefined) {
      this.stopStream = undefined;
      stopStream(reason);
    }
  }

  /** Ends the call when its client goes away (closes or resets the stream) before it is answered. */
  private watchClient(): void {
    if (this.watchingClient) return;
    this.watchingClient = true;
    if (this.stream.closed) {
      this.end(clientGone);
      return;
    }
    this.stream.on("close", onCallClose);
  }

  private responseHeaders(header: Headers | undefined): Record<string, string | number> {
    const fields: Record<string, string | number> = {
      ":status": 200,
      "content-type": this.wire.contentType,
    };
    // An enveloped answer names the compression its messages may use (each says if it does).
    const compression = this.compression.response;
    if (compression !== null && this.wire.enveloped) {
      fields[this.wire.encodingHeader] = compression.name;
    }
    return toObject(header, fields);
  }
}

/**
 * The context a handler (and the request gate) runs with: the call's, with the request header,
 * signal and context values the interceptors passed on in `req`.
 */
class CallContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod: string;
  readonly protocolName: string;
  private readonly call: Call;
  private readonly req: RequestParts;

  constructor(call: Call, req: RequestParts) {
    this.call = call;
    this.req = req;
    this.protocolName = call.wire.protocolName;
    this.requestMethod = call.requestMethod;
    this.method = call.method;
    this.service = call.method.parent;
  }

  get signal(): AbortSignal {
    return this.req.signal;
  }

  get requestHeader(): Headers {
    return this.req.header;
  }

  get values(): ContextValues {
    return this.req.contextValues;
  }

  get responseHeader(): Headers {
    return this.call.responseHeader;
  }

  get responseTrailer(): Headers {
    return this.call.responseTrailer;
  }

  get url(): string {
    return this.call.url;
  }

  timeoutMs(): number | undefined {
    const deadline = this.call.deadline;
    return deadline === undefined ? undefined : deadline - Date.now();
  }
}

/** What of a request (as the interceptors passed it on) a handler's context is made of. */
interface RequestParts {
  header: Headers;
  signal: AbortSignal;
  contextValues: ContextValues;
}

/** A message over a size limit, told as connect-es tells it. */
export function messageTooLarge(
  size: number,
  limit: "readMaxBytes" | "writeMaxBytes",
  bytes: number,
): ConnectError {
  return new ConnectError(
    `message size ${size} is larger than configured ${limit} ${bytes}`,
    Code.ResourceExhausted,
  );
}

function extraMessage(): ConnectError {
  return new ConnectError(
    "protocol error: received extra input message for unary method",
    Code.Unimplemented,
  );
}

/**
 * `message` (a message, or the init object of one) in protobuf, or as JSON with `json`'s options;
 * JSON stays a string: Node then writes an HTTP/1.1 answer's headers and body as one chunk (a
 * Buffer goes out by writev of two, which cost about a fifth of a JSON call's time).
 */
function serialize(
  schema: DescMessage,
  message: unknown,
  maxMessageBytes: number,
  json?: Partial<JsonWriteOptions>,
): Body {
  const full = create(schema, message as never);
  const data = json === undefined ? toBinary(schema, full) : toJsonString(schema, full, json);
  const length = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  if (length > maxMessageBytes) throw messageTooLarge(length, "writeMaxBytes", maxMessageBytes);
  return { data, length };
}

/** The body of a Connect unary answer, its length in bytes, and its compression if any. */
interface Body {
  data: string | Uint8Array;
  length: number;
  encoding?: string;
}

/** gRPC-web's last frame: the trailer fields, one "name: value" line each, flagged as trailers. */
function trailerFrame(fields: Headers): Buffer {
  return envelope(trailerSerialize(fields), trailerFlag);
}

/**
 * Ends the answer on `stream` with its last bytes, `data`. On HTTP/2 they are written first and
 * the stream is ended once Node has written them, with an empty DATA frame that carries
 * END_STREAM. `end(data)` would send END_STREAM with the data: the client has the whole answer
 * and the stream closes before Node's callback for the write runs, and Node then builds an
 * ERR_STREAM_DESTROYED, stack trace and all, that nothing reads (its Writable's errorBuffer). On
 * every unary answer under load that was about a fifth of the CPU of a bare node:http2 server
 * (h2load, CPU profile); raw node:http2 in the bench still pays it.
 */
function endWith(stream: Exchange, data: Uint8Array | string): void {
  if (stream instanceof Http1Exchange) {
    stream.end(data);
    return;
  }
  const h2 = stream as ServerHttp2Stream;
  h2.write(data, (error) => {
    if (error == null && !h2.destroyed) h2.end();
  });
}

/** The gRPC-web trailer frame of a call that succeeds with no trailers of its own. */
const okTrailerFrame = trailerFrame(grpcStatus(undefined, undefined));

/**
 * The trailer fields of a gRPC or gRPC-web call that ends with `status` (success when undefined):
 * `trailer`, the status, and its message percent-encoded as the gRPC spec says.
 */
function grpcStatus(trailer: Headers | undefined, status: ConnectError | undefined): Headers {
  const fields = setTrailerStatus(new Headers(trailer), status);
  if (status !== undefined && status.rawMessage !== "") {
    fields.set("grpc-message", encodeGrpcMessage(status.rawMessage));
  }
  return fields;
}

/** `trailer` as Connect unary sends it: each field as a header prefixed "trailer-". */
function prefixedTrailers(trailer: Headers | undefined): Headers | undefined {
  if (trailer === undefined) return undefined;
  const prefixed = new Headers();
  trailer.forEach((value, name) => {
    prefixed.set(`trailer-${name}`, value);
  });
  return prefixed;
}

/** The request message in `bytes`: protobuf, or JSON with `json`'s options. */
function decode(schema: DescMessage, bytes: Buffer, json?: Partial<JsonReadOptions>) {
  try {
    if (json === undefined) return fromBinary(schema, bytes);
    // Unknown fields are ignored unless the options say otherwise, as connect-es reads JSON.
    return fromJsonString(schema, bytes.toString("utf8"), { ignoreUnknownFields: true, ...json });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConnectError(
      json === undefined
        ? requestFaults.undecodable(schema.typeName, reason)
        : `cannot decode message ${schema.typeName} from JSON: ${reason}`,
      Code.InvalidArgument,
    );
  }
}

/** The enveloped encoding of `message` (see serialize). */
function encode(
  schema: DescMessage,
  message: unknown,
  maxMessageBytes: number,
  json?: Partial<JsonWriteOptions>,
): Buffer {
  const { data } = serialize(schema, message, maxMessageBytes, json);
  return envelope(typeof data === "string" ? Buffer.from(data) : data);
}

/**
 * The enveloped encoding of a streamed message. A change that goes out to many watchers is one
 * message object made by `convertBatchesOnce` and yielded by each of their streams: it is encoded
 * once, for all of them (and may later stand for nothing but that encoding: see
 * `preEncodedBatch`). Any other message is encoded as it is when sent.
 */
function frameOf(
  schema: DescMessage,
  message: unknown,
  maxMessageBytes: number,
  json: Partial<JsonWriteOptions> | undefined,
): Buffer {
  const shared =
    typeof message === "object" && message !== null
      ? (message as { [sharedEncoding]?: SharedEncoding })[sharedEncoding]
      : undefined;
  // An encoding is shared by the streams of one method: another method's is made anew.
  if (shared === undefined || (shared.schema !== undefined && shared.schema !== schema)) {
    return encode(schema, message, maxMessageBytes, json);
  }
  shared.schema = schema;
  if (json === undefined) {
    shared.frame ??= ownMemory(encode(schema, message, maxMessageBytes));
    return shared.frame as Buffer;
  }
  shared.jsonFrame ??= ownMemory(encode(schema, message, maxMessageBytes, json));
  return shared.jsonFrame as Buffer;
}

/** Whether `message` is encoded once for every stream that sends it (see frameOf). */
/** On a streamed message: send it uncompressed (see sentUncompressed). */
const uncompressedMark = Symbol("uncompressed");

/**
 * `message`, marked to go out of a stream uncompressed whatever its client accepts: for streams
 * whose compression would cost the serving process more than the bytes it saves are worth (the
 * tap's, which must not take CPU from the calls it reports).
 */
export function sentUncompressed<T extends object>(message: T): T {
  Object.defineProperty(message, uncompressedMark, { value: true });
  return message;
}

function isMarkedUncompressed(message: unknown): boolean {
  return typeof message === "object" && message !== null && uncompressedMark in message;
}

function isShared(message: unknown): boolean {
  return typeof message === "object" && message !== null && sharedEncoding in message;
}

/**
 * `frame` in memory of its own: a small Buffer is a slice of a pool shared with others (8 KiB),
 * which a frame kept for a while (a snapshot page kept as its encoding) would keep whole.
 */
function ownMemory(frame: Buffer): Buffer {
  if (frame.byteLength === frame.buffer.byteLength) return frame;
  const own = Buffer.allocUnsafeSlow(frame.byteLength);
  frame.copy(own);
  return own;
}

/** The handler of a unary method, innermost in its chain. */
function unaryHandler(spec: Extract<ServedSpec, { kind: "unary" | "client_streaming" }>) {
  return async (req: CallRequest): Promise<UnaryResponse> => {
    const call = callOf(req);
    const output = await spec.impl(req.message as never, new CallContext(call, req));
    return new Answer(call, create(spec.method.output, output));
  };
}

/**
 * A handler's answer as the interceptors see it. Its header and trailer are the call's, made when
 * first asked for: most calls set neither, and then send none (a watch holds neither while it is
 * open). They are getters of the class, so a copy made with `{ ...res }` has neither; the call
 * then sends its own (partsOf).
 */
abstract class CallAnswer {
  readonly service: DescService;
  protected readonly call: Call;

  constructor(call: Call) {
    this.call = call;
    this.service = call.method.parent;
  }

  get header(): Headers {
    return this.call.responseHeader;
  }

  get trailer(): Headers {
    return this.call.responseTrailer;
  }
}

/** A unary (or client-streaming) handler's answer. */
class Answer extends CallAnswer implements UnaryResponse {
  readonly stream = false;
  readonly method: UnaryResponse["method"];
  readonly message: UnaryResponse["message"];

  constructor(call: Call, message: UnaryResponse["message"]) {
    super(call);
    this.method = call.method as UnaryResponse["method"];
    this.message = message;
  }
}

/** A server- or bidi-streaming handler's answer: its messages. */
class StreamAnswer extends CallAnswer {
  readonly stream = true;
  readonly method: DescMethod;
  readonly message: AsyncIterable<unknown>;

  constructor(call: Call, message: AsyncIterable<unknown>) {
    super(call);
    this.method = call.method;
    this.message = message;
  }
}

/** The handler of a bidi-streaming method, innermost in its chain. */
function bidiStreamingHandler(spec: Extract<ServedSpec, { kind: "bidi_streaming" }>) {
  return async (req: CallRequest): Promise<StreamResponse> => {
    const call = callOf(req);
    return streamAnswer(call, spec.impl(req.message as never, new CallContext(call, req)));
  };
}

/** A streaming method's answer, `messages`, as the interceptors see it. */
function streamAnswer(call: Call, messages: unknown): StreamResponse {
  return new StreamAnswer(call, messages as AsyncIterable<unknown>) as unknown as StreamResponse;
}

/** The handler of a server-streaming method, innermost in its chain. */
function serverStreamingHandler(spec: Extract<ServedSpec, { kind: "server_streaming" }>) {
  return async (req: CallRequest): Promise<StreamResponse> => {
    const call = callOf(req);
    const first = await (req.message as AsyncIterable<unknown>)[Symbol.asyncIterator]().next();
    return streamAnswer(call, spec.impl(first.value as never, new CallContext(call, req)));
  };
}

type Chain<R> = (req: CallRequest) => Promise<R>;

/** `handler` wrapped in `interceptors`, the first outermost, as connect-es applies them. */
function chain<R>(interceptors: readonly Interceptor[], handler: Chain<R>): Chain<R> {
  let next = handler as unknown as Parameters<Interceptor>[0];
  for (let index = interceptors.length - 1; index >= 0; index--) {
    next = (interceptors[index] as Interceptor)(next);
  }
  return next as unknown as Chain<R>;
}

const callOfRequest = Symbol("call");

const callKey = createContextKey<Call | undefined>(undefined, {
  description: "the call the runtime's path answers",
});

/**
 * The call of a request the interceptors passed on: the request made for it, a copy of it
 * (`{ ...req }` copies the symbol-keyed field too), or one rebuilt from its fields (which keeps
 * its context values).
 */
function callOf(req: CallRequest): Call {
  const call = req[callOfRequest] ?? req.contextValues?.get(callKey);
  if (call === undefined) {
    throw new ConnectError(
      "an interceptor passed on a request without the context values of the one it got",
      Code.Internal,
    );
  }
  return call;
}

// A request's signal is made by its call when first asked for, also when an interceptor copies the
// request ({ ...req }): an own enumerable getter, the same one for every request. (Defining it costs
// more than building the URL, which is a plain field.)
const signalField = {
  get(this: CallRequest) {
    return this[callOfRequest].signal;
  },
  enumerable: true,
};

/** How a call came and went on the wire: what a tap reports beside its method and code. */
export interface WireFacts {
  protocol: "connect" | "grpc" | "grpc-web";
  codec: "json" | "proto";
  httpVersion: "1.1" | "2";
  /** The request's and the response's message bytes so far (encoded, as on the wire). */
  requestBytes: number;
  responseBytes: number;
}

/** The wire facts of the call a request belongs to; undefined for one the runtime's path did not make. */
export function wireFactsOf(req: { contextValues?: ContextValues }): WireFacts | undefined {
  const call = req.contextValues?.get(callKey);
  if (call === undefined) return undefined;
  return {
    protocol: call.wire.protocolName,
    codec: call.wire.json ? "json" : "proto",
    httpVersion: call.stream instanceof Http1Exchange ? "1.1" : "2",
    requestBytes: call.requestBytes,
    responseBytes: call.responseBytes,
  };
}

/** The request the interceptors see, with the fields connect-es gives it. */
class CallRequest {
  readonly stream: boolean;
  readonly service: DescService;
  readonly method: DescMethod;
  readonly requestMethod: string;
  readonly header: Headers;
  readonly contextValues: ContextValues;
  readonly message: unknown;
  readonly url: string;
  readonly [callOfRequest]: Call;
  declare readonly signal: AbortSignal;

  constructor(call: Call, stream: boolean, message: unknown) {
    this.stream = stream;
    this.requestMethod = call.requestMethod;
    this.service = call.method.parent;
    this.method = call.method;
    this.header = call.header;
    this.contextValues = call.contextValues;
    this.message = message;
    this.url = call.url;
    this[callOfRequest] = call;
    Object.defineProperty(this, "signal", signalField);
  }
}

/** What `Call.requestMessage` returns for an envelope that holds no message. */
const skip = Symbol("skip");

/**
 * The request messages of a client- or bidi-streaming call as they arrive: the envelopes taken
 * from the body's chunks, each decoded (and decompressed) when the handler asks for the next. The
 * body is paused while a whole message waits to be taken, so that a client cannot make the server
 * hold more than about one message beyond what the handler has read; an envelope announced larger
 * than `maxMessageBytes` fails the call before its bytes arrive.
 */
class RequestStream implements AsyncIterableIterator<unknown> {
  private readonly call: Call;
  private readonly maxMessageBytes: number;
  private readonly body = new EnvelopeBuffer();
  private paused = false;
  /** The body has ended. */
  private ended = false;
  /** The handler is done with the stream (it returned, or read to the end). */
  private done = false;
  private failure: unknown;
  /** The reads waiting for a message (more than one if a reader does not wait for the last). */
  private waiting: (() => void)[] = [];

  constructor(call: Call, maxMessageBytes: number) {
    this.call = call;
    this.maxMessageBytes = maxMessageBytes;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Takes a chunk of the body. */
  push(chunk: Buffer): void {
    // What the client sends after the handler is done is read and dropped.
    if (this.done) return;
    const { body } = this;
    body.push(chunk);
    if (this.refuseOversized() !== undefined) return;
    const announced = body.announced();
    if (announced >= 0 && body.size >= envelopeHeaderBytes + announced && !this.paused) {
      this.paused = true;
      this.call.stream.pause();
    }
    this.notify();
  }

  /** The body has ended. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The call has ended: a handler waiting for a message gets `error` instead. */
  fail(error: unknown): void {
    if (this.failure !== undefined || this.done) return;
    this.failure = error;
    this.notify();
  }

  async next(): Promise<IteratorResult<unknown>> {
    for (;;) {
      if (this.done) return { done: true, value: undefined };
      if (this.failure !== undefined) throw this.failure;
      const frame = this.body.take();
      if (frame !== undefined) {
        const message = await this.call.requestMessage(frame);
        if (message === skip) continue;
        return { done: false, value: message };
      }
      // The next envelope's header may have come with the message before it.
      const oversized = this.refuseOversized();
      if (oversized !== undefined) throw oversized;
      if (this.ended) {
        this.done = true;
        if (this.body.size > 0) {
          throw new ConnectError(requestFaults.incompleteEnvelope, Code.InvalidArgument);
        }
        return { done: true, value: undefined };
      }
      if (this.paused) {
        this.paused = false;
        this.call.stream.resume();
      }
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
      });
    }
  }

  return(): Promise<IteratorResult<unknown>> {
    this.done = true;
    this.body.clear();
    if (this.paused) {
      this.paused = false;
      this.call.stream.resume();
    }
    this.notify();
    return Promise.resolve({ done: true, value: undefined });
  }

  private notify(): void {
    const waiting = this.waiting;
    if (waiting.length === 0) return;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  /** Fails the call when the first buffered envelope announces more than the limit: why, if so. */
  private refuseOversized(): ConnectError | undefined {
    const announced = this.body.announced();
    if (announced <= this.maxMessageBytes) return undefined;
    const error = messageTooLarge(announced, "readMaxBytes", this.maxMessageBytes);
    this.call.finish(error);
    return error;
  }
}

/**
 * Closes the messages of a stream answer that will not be sent (its call ended while the chain
 * ran), so that what observes them (stream limits, metrics, tracing) sees the stream end.
 */
function abandon(res: StreamResponse): void {
  res.message[Symbol.asyncIterator]()
    .return?.()
    .catch(() => {});
}

function single<T>(value: T): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      let done = false;
      return {
        next: () => {
          if (done) return Promise.resolve({ done: true as const, value: undefined });
          done = true;
          return Promise.resolve({ done: false as const, value });
        },
      };
    },
  };
}

function toConnectError(error: unknown): ConnectError {
  return error instanceof ConnectError
    ? error
    : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}

function toObject(
  headers: Headers | undefined,
  into: Record<string, string | number>,
): Record<string, string | number> {
  headers?.forEach((value, name) => {
    into[name] = value;
  });
  return into;
}

/** Resolves when `stream` can take more, or has closed. */
function drained(stream: Exchange): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
