import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  toBinary,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type StreamResponse,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { IncomingHeaders } from "./incoming-headers.ts";
import { encodeGrpcMessage, requestFaults } from "./request-guard.ts";
import { actsOnStreamsOnly, stopStreamOn } from "./streams.ts";
import { convertOnce, type SharedEncoding, sharedEncoding } from "./watch.ts";

// The gRPC serving path of the runtime. connect-es serves gRPC through its streaming machinery for
// every call: about ten async-iterable transforms per call and per streamed message, a Web
// request and response per call built by connect-node's adapter, and aborts that construct a
// DOMException each (bench/README.md, "Where the time goes"). This path serves the calls that
// make up almost all of a mesh's traffic, gRPC unary and server-streaming calls with uncompressed
// protobuf, straight from the HTTP/2 stream: the same implementations, the same interceptors and
// request gate, with the semantics connect-es gives them (codes, messages, headers, trailers,
// deadlines, limits). Everything else (gRPC-web, Connect, JSON, compression, client and bidi
// streams) still goes to connect-es. No library offers a gRPC server that shares a port and its
// interceptors with connect-es, hence this code.

/** What the gRPC path needs to serve a router's methods. */
export interface GrpcPathOptions {
  /** The interceptors of the router, outermost first, as connect-es applies them. */
  interceptors: readonly Interceptor[];
  /** Runs after the headers, before the body is read; a throw refuses the call. */
  requestGate?: (context: HandlerContext) => Promise<void>;
  /** The context values of a call (its peer, say). */
  contextValues: (stream: ServerHttp2Stream) => ContextValues;
  /** Largest message received, in bytes. */
  maxMessageBytes: number;
  /** Largest message sent, in bytes. */
  maxSendMessageBytes: number;
  /** Largest timeout a client may ask for, in milliseconds. */
  maxTimeoutMs: number;
}

/** The gRPC path: records a router's implementations, then serves calls to them. */
export interface GrpcPath {
  /**
   * `router`, recording the implementations registered through it, so that this path can serve
   * them too (what is registered with per-service options is left to connect-es).
   */
  record(router: ConnectRouter): ConnectRouter;
  /** Serves the call on `stream` and returns true, or returns false for connect-es to serve it. */
  take(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
}

type ServedSpec = Extract<MethodImplSpec, { kind: "unary" | "server_streaming" }>;

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);
/** The bytes before each message of a gRPC body: a flags byte and the message's length. */
export const envelopeHeaderBytes = 5;
// Abort reasons: aborting without one makes Node construct a DOMException (with a stack) per call.
const callEnded = new ConnectError("the call has ended", Code.Canceled);
const clientGone = new ConnectError("the client closed the call", Code.Canceled);

/** Creates the gRPC path of a server. */
export function createGrpcPath(options: GrpcPathOptions): GrpcPath {
  const methods = new Map<string, ServedSpec>();
  const serve = createCallServer(options);
  return {
    record(router) {
      return {
        get handlers() {
          return router.handlers;
        },
        service(service, implementation, serviceOptions) {
          router.service(service, implementation, serviceOptions);
          if (serviceOptions === undefined) {
            const spec = createServiceImplSpec(service, implementation);
            for (const method of Object.values(spec.methods)) {
              if (method.kind === "unary" || method.kind === "server_streaming") {
                methods.set(`/${service.typeName}/${method.method.name}`, method);
              }
            }
          }
          return this;
        },
        rpc(method, implementation, methodOptions) {
          router.rpc(method, implementation, methodOptions);
          return this;
        },
      };
    },
    take(stream, headers) {
      const path = headers[":path"];
      const spec = path === undefined ? undefined : methods.get(path);
      if (spec === undefined || headers[":method"] !== "POST") return false;
      const contentType = headers["content-type"];
      if (contentType === undefined || !contentTypes.has(contentType)) return false;
      const encoding = headers["grpc-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      serve(spec, stream, headers, contentType);
      return true;
    },
  };
}

function createCallServer(options: GrpcPathOptions) {
  const { interceptors, requestGate, maxTimeoutMs } = options;
  // Each method's handler wrapped in the interceptors, once: a call finds its Call on the request.
  // Those that act on streams only would pass a unary call straight on; its chain leaves them out.
  const unaryInterceptors = interceptors.filter((interceptor) => !actsOnStreamsOnly(interceptor));
  const shared: SharedByCalls = {
    maxMessageBytes: options.maxMessageBytes,
    maxSendMessageBytes: options.maxSendMessageBytes,
    unaryChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "unary" }>) =>
      chain(unaryInterceptors, unaryHandler(spec)),
    ),
    streamChainOf: convertOnce((spec: Extract<ServedSpec, { kind: "server_streaming" }>) =>
      chain(interceptors, serverStreamingHandler(spec)),
    ),
  };

  return (
    spec: ServedSpec,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    contentType: string,
  ): void => {
    const header = new IncomingHeaders(headers);
    const timeout = parseTimeout(header.get("grpc-timeout"), maxTimeoutMs);
    const deadline =
      timeout.timeoutMs === undefined || timeout.error ? undefined : Date.now() + timeout.timeoutMs;
    const call = new Call(
      shared,
      spec,
      stream,
      headers,
      header,
      contentType,
      deadline,
      options.contextValues(stream),
    );
    // The gate runs after the headers, before the body is read.
    if (requestGate === undefined) call.read(timeout.error);
    else {
      requestGate(new CallContext(call, call)).then(
        () => call.read(timeout.error),
        (error: unknown) => call.finish(error),
      );
    }
  };
}

/** What the calls of one server share: each method's chain, and the message size limits. */
interface SharedByCalls {
  maxMessageBytes: number;
  maxSendMessageBytes: number;
  unaryChainOf: (spec: Extract<ServedSpec, { kind: "unary" }>) => Chain<UnaryResponse>;
  streamChainOf: (spec: Extract<ServedSpec, { kind: "server_streaming" }>) => Chain<StreamResponse>;
}

/** A call's HTTP/2 stream, which holds its call for the listeners below. */
type CallStream = ServerHttp2Stream & { [callOfStream]?: Call };
const callOfStream = Symbol("call");

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

/**
 * One call being answered on its HTTP/2 stream. What only some calls use is made when first asked
 * for: the signal (and with it the watch for a client that goes away, for unary calls) and the URL.
 */
class Call {
  /** True once the call has been answered in full, failed, or abandoned by its client. */
  ended = false;
  readonly method: DescMethod;
  readonly stream: ServerHttp2Stream;
  readonly header: Headers;
  readonly contextValues: ContextValues;
  /** Absolute deadline (Date.now() scale), if the client set a timeout. */
  readonly deadline: number | undefined;
  private readonly shared: SharedByCalls;
  private readonly spec: ServedSpec;
  private readonly headers: IncomingHttpHeaders;
  private readonly contentType: string;
  private headersSent = false;
  private controller: AbortController | undefined;
  private endReason: ConnectError | undefined;
  private watchingClient = false;
  private readonly timer: NodeJS.Timeout | undefined;
  // The response's header and trailer, made when a handler or interceptor first asks for them.
  private setHeader: Headers | undefined;
  private setTrailer: Headers | undefined;
  // The trailers to send when the stream asks for them; the success status when undefined.
  private trailersToSend: Record<string, string | number> | undefined;
  // The request body as it comes: its first chunk, all of them once there is more than one, their
  // size, and the message length its envelope announces (-1 until read).
  private firstChunk: Buffer | undefined;
  private chunks: Buffer[] | undefined;
  private size = 0;
  private announced = -1;

  constructor(
    shared: SharedByCalls,
    spec: ServedSpec,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    header: Headers,
    contentType: string,
    deadline: number | undefined,
    contextValues: ContextValues,
  ) {
    this.shared = shared;
    this.spec = spec;
    this.method = spec.method;
    this.stream = stream;
    this.headers = headers;
    this.header = header;
    this.contentType = contentType;
    this.deadline = deadline;
    this.contextValues = contextValues;
    (stream as CallStream)[callOfStream] = this;
    stream.on("error", ignore);
    // A stream's writes wait for a client that may go away meanwhile.
    if (spec.kind === "server_streaming") this.watchClient();
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

  get url(): string {
    return `http://${this.headers[":authority"] ?? "localhost"}${this.headers[":path"]}`;
  }

  get responseHeader(): Headers {
    this.setHeader ??= new Headers();
    return this.setHeader;
  }

  get responseTrailer(): Headers {
    this.setTrailer ??= new Headers();
    return this.setTrailer;
  }

  /** Starts reading the request, unless `refusal` refuses the call (a timeout out of range). */
  read(refusal: ConnectError | undefined): void {
    if (refusal !== undefined) {
      this.finish(refusal);
      return;
    }
    if (this.ended) return;
    this.stream.on("data", onCallData);
    this.stream.on("end", onCallEnd);
  }

  /**
   * Takes a chunk of the request body, which must be a single uncompressed envelope of at most
   * `maxMessageBytes`: the call fails as soon as it cannot be.
   */
  receive(chunk: Buffer): void {
    if (this.firstChunk === undefined) this.firstChunk = chunk;
    else if (this.chunks === undefined) this.chunks = [this.firstChunk, chunk];
    else this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.announced < 0 && this.size >= envelopeHeaderBytes) {
      const head = this.chunks === undefined ? chunk : Buffer.concat(this.chunks, this.size);
      if ((head[0] ?? 0) & 0b1) {
        this.finish(
          // The gRPC specification's code for it (a protocol error), as connect-es answers too.
          new ConnectError(requestFaults.compressedWithoutEncoding, Code.Internal),
        );
        return;
      }
      this.announced = head.readUInt32BE(1);
      const limit = this.shared.maxMessageBytes;
      if (this.announced > limit) {
        this.finish(
          new ConnectError(
            `message size ${this.announced} is larger than configured readMaxBytes ${limit}`,
            Code.ResourceExhausted,
          ),
        );
        return;
      }
    }
    if (
      this.announced >= 0 &&
      this.size > envelopeHeaderBytes + this.announced + envelopeHeaderBytes
    ) {
      this.finish(extraMessage());
    }
  }

  /** The request body has ended: answers its message, or fails the call when it is not whole. */
  received(): void {
    if (this.ended) return;
    const { size, announced } = this;
    if (size === 0) {
      this.finish(
        new ConnectError(
          "protocol error: missing input message for unary method",
          Code.Unimplemented,
        ),
      );
      return;
    }
    const end = envelopeHeaderBytes + announced;
    if (announced >= 0 && size - end >= envelopeHeaderBytes) {
      this.finish(extraMessage());
      return;
    }
    if (announced < 0 || size !== end) {
      this.finish(new ConnectError(requestFaults.incompleteEnvelope, Code.InvalidArgument));
      return;
    }
    const body = this.chunks === undefined ? this.firstChunk : Buffer.concat(this.chunks, size);
    this.firstChunk = undefined;
    this.chunks = undefined;
    void this.answer((body as Buffer).subarray(envelopeHeaderBytes));
  }

  /** Runs the method's chain on the request message and sends what it answers. */
  private async answer(bytes: Uint8Array): Promise<void> {
    const { spec, method, shared } = this;
    try {
      const input = decode(method.input, bytes);
      if (spec.kind === "unary") {
        const res = await shared.unaryChainOf(spec)(new CallRequest(this, false, input));
        if (this.ended) return;
        this.sendUnary(encode(method.output, res.message, shared.maxSendMessageBytes), res);
      } else {
        const res = await shared.streamChainOf(spec)(new CallRequest(this, true, single(input)));
        if (this.ended) return;
        await this.sendStream(res, (message) =>
          frameOf(method.output, message, shared.maxSendMessageBytes),
        );
      }
    } catch (error) {
      this.finish(error);
    }
  }

  /** Answers with `res`: the handler's answer, or one an interceptor put in its place. */
  sendUnary(frame: Buffer, res: UnaryResponse): void {
    const stream = this.stream;
    if (!stream.destroyed) {
      // The handler's own answer, or a copy of it ({ ...res }, which leaves out its getters), uses
      // the call's header and trailer, if anything made them; another answer brings its own.
      const own = res instanceof Answer;
      const header: Headers | undefined = own ? this.setHeader : (res.header ?? this.setHeader);
      const trailer: Headers | undefined = own ? this.setTrailer : (res.trailer ?? this.setTrailer);
      this.headersSent = true;
      if (trailer !== undefined) this.trailersToSend = toObject(trailer, { "grpc-status": "0" });
      stream.respond(this.responseHeaders(header), withTrailers);
      stream.on("wantTrailers", onWantTrailers);
      stream.end(frame);
    }
    this.end(callEnded);
  }

  /** Sends the trailers the call ended with, when its stream asks for them. */
  sendTrailers(): void {
    this.stream.sendTrailers(this.trailersToSend ?? okTrailers);
  }

  /** Writes the messages of a server stream as they come, waiting for the client to read them. */
  async sendStream(res: StreamResponse, frameOf: (message: unknown) => Buffer): Promise<void> {
    const stream = this.stream;
    // The call's end (client gone, deadline) ends the wait for the next message too.
    const messages = stopStreamOn(res.message, (stop) => {
      const signal = this.signal;
      const onAbort = () => stop(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      return () => signal.removeEventListener("abort", onAbort);
    })[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<unknown> | undefined = await messages.next();
        if (this.ended) return;
        if (next.done) break;
        const frame = frameOf(next.value);
        // The message is let go of before waiting for a slow reader: a suspended async function
        // keeps its locals alive (V8), and the bytes are all the stream needs now.
        next = undefined;
        if (!this.headersSent) {
          this.headersSent = true;
          stream.respond(this.responseHeaders(res.header), withTrailers);
        }
        if (!stream.write(frame)) await drained(stream);
      }
    } catch (error) {
      messages.return?.().catch(() => {});
      throw error;
    }
    this.finish(undefined, res.trailer);
  }

  /** Ends the call with `error`, or with success and `trailer`; later calls do nothing. */
  finish(error: unknown, trailer: Headers | undefined = this.setTrailer): void {
    if (this.ended) return;
    const stream = this.stream;
    const status = error === undefined ? undefined : toConnectError(error);
    this.end(status ?? callEnded);
    if (stream.destroyed || stream.closed) return;
    const fields = setTrailerStatus(new Headers(trailer), status);
    if (status !== undefined && status.rawMessage !== "") {
      fields.set("grpc-message", encodeGrpcMessage(status.rawMessage));
    }
    if (!this.headersSent) {
      // Trailers-only: the status goes with the headers, and nothing follows.
      this.headersSent = true;
      stream.respond(toObject(fields, this.responseHeaders(this.setHeader)), trailersOnly);
    } else {
      this.trailersToSend = toObject(fields, {});
      stream.on("wantTrailers", onWantTrailers);
      stream.end();
    }
    // What the client still sends is not read.
    stream.off("data", onCallData);
    stream.off("end", onCallEnd);
    stream.resume();
  }

  /** The client closed or reset the stream. */
  clientClosed(): void {
    if (!this.ended) this.end(clientGone);
  }

  private end(reason: ConnectError): void {
    this.ended = true;
    this.endReason = reason;
    clearTimeout(this.timer);
    const controller = this.controller;
    if (controller !== undefined && !controller.signal.aborted) controller.abort(reason);
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
    return toObject(header, { ":status": 200, "content-type": this.contentType });
  }
}

/**
 * The context a handler (and the request gate) runs with: the call's, with the request header,
 * signal and context values the interceptors passed on in `req`.
 */
class CallContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  private readonly call: Call;
  private readonly req: RequestParts;

  constructor(call: Call, req: RequestParts) {
    this.call = call;
    this.req = req;
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

function extraMessage(): ConnectError {
  return new ConnectError(
    "protocol error: received extra input message for unary method",
    Code.Unimplemented,
  );
}

function decode(schema: DescMessage, bytes: Uint8Array) {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConnectError(
      requestFaults.undecodable(schema.typeName, reason),
      Code.InvalidArgument,
    );
  }
}

/** The enveloped encoding of `message` (a message, or the init object of one). */
function encode(schema: DescMessage, message: unknown, maxMessageBytes: number): Buffer {
  const bytes = toBinary(schema, create(schema, message as never));
  if (bytes.byteLength > maxMessageBytes) {
    throw new ConnectError(
      `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${maxMessageBytes}`,
      Code.ResourceExhausted,
    );
  }
  return envelope(bytes);
}

/** `bytes` as one uncompressed gRPC message: the envelope's header, then the message. */
export function envelope(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(envelopeHeaderBytes + bytes.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.byteLength, 1);
  frame.set(bytes, envelopeHeaderBytes);
  return frame;
}

/**
 * The enveloped encoding of a streamed message. A change that goes out to many watchers is one
 * message object made by `convertOnce` and yielded by each of their streams: it is encoded once,
 * for all of them. Any other message is encoded as it is when sent.
 */
function frameOf(schema: DescMessage, message: unknown, maxMessageBytes: number): Buffer {
  const shared =
    typeof message === "object" && message !== null
      ? (message as { [sharedEncoding]?: SharedEncoding })[sharedEncoding]
      : undefined;
  if (shared === undefined) return encode(schema, message, maxMessageBytes);
  shared.frame ??= encode(schema, message, maxMessageBytes);
  return shared.frame as Buffer;
}

/** The handler of a unary method, innermost in its chain. */
function unaryHandler(spec: Extract<ServedSpec, { kind: "unary" }>) {
  return async (req: CallRequest): Promise<UnaryResponse> => {
    const call = callOf(req);
    const output = await spec.impl(req.message as never, new CallContext(call, req));
    return new Answer(call, create(spec.method.output, output));
  };
}

/**
 * A unary handler's answer as the interceptors see it. Its header and trailer are the call's, made
 * when first asked for: most calls set neither, and then send none. (They are getters of the class,
 * so a copy made with `{ ...res }` has neither; sendUnary then takes the call's.)
 */
class Answer implements UnaryResponse {
  readonly stream = false;
  readonly service: DescService;
  readonly method: UnaryResponse["method"];
  readonly message: UnaryResponse["message"];
  private readonly call: Call;

  constructor(call: Call, message: UnaryResponse["message"]) {
    this.call = call;
    this.service = call.method.parent;
    this.method = call.method as UnaryResponse["method"];
    this.message = message;
  }

  get header(): Headers {
    return this.call.responseHeader;
  }

  get trailer(): Headers {
    return this.call.responseTrailer;
  }
}

/** The handler of a server-streaming method, innermost in its chain. */
function serverStreamingHandler(spec: Extract<ServedSpec, { kind: "server_streaming" }>) {
  return async (req: CallRequest): Promise<StreamResponse> => {
    const call = callOf(req);
    const first = await (req.message as AsyncIterable<unknown>)[Symbol.asyncIterator]().next();
    return {
      stream: true as const,
      service: spec.method.parent,
      method: spec.method,
      header: call.responseHeader,
      trailer: call.responseTrailer,
      message: spec.impl(
        first.value as never,
        new CallContext(call, req),
      ) as StreamResponse["message"],
    };
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

/**
 * The call of a request the interceptors passed on: the request made for it, or a copy
 * (`{ ...req }` copies the symbol-keyed field too).
 */
function callOf(req: CallRequest): Call {
  const call = req[callOfRequest];
  if (call === undefined) {
    throw new ConnectError(
      "an interceptor passed on a request that is not a copy of the one it got ({ ...req })",
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

/** The request the interceptors see, with the fields connect-es gives it. */
class CallRequest {
  readonly stream: boolean;
  readonly service: DescService;
  readonly method: DescMethod;
  readonly requestMethod = "POST";
  readonly header: Headers;
  readonly contextValues: ContextValues;
  readonly message: unknown;
  readonly url: string;
  readonly [callOfRequest]: Call;
  declare readonly signal: AbortSignal;

  constructor(call: Call, stream: boolean, message: unknown) {
    this.stream = stream;
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
function drained(stream: ServerHttp2Stream): Promise<void> {
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
