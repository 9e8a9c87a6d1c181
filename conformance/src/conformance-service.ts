// The ConformanceService every target serves: it answers each call as the request's response
// definition says and echoes what it received, as the comments of service.proto and the official
// reference server (connectrpc/conformance, internal/app/referenceserver) specify. One
// implementation for both targets, so that a difference between them is the serving path's.
import { create, createRegistry, type MessageInitShape, type Registry } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  type ConformancePayload_RequestInfo,
  ConformancePayload_RequestInfoSchema,
  type ConformancePayloadSchema,
  type ConformanceService,
  type Error as DefinedError,
  file_connectrpc_conformance_v1_service,
  type Header,
  type HeaderSchema,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  type StreamResponseDefinition,
  UnaryRequestSchema,
  type UnaryResponseDefinition,
} from "@shop/api/connectrpc/conformance/v1/service_pb";

/**
 * The messages packed in `google.protobuf.Any` that the service sends (the requests it echoes), so
 * that the JSON codec can write them; a server gives it as `jsonOptions.registry`.
 */
export const conformanceRegistry: Registry = createRegistry(file_connectrpc_conformance_v1_service);

type Payload = MessageInitShape<typeof ConformancePayloadSchema>;

/** `connectrpc.conformance.v1.ConformanceService`, implemented for any connect-es router. */
export const conformanceService: ServiceImpl<typeof ConformanceService> = {
  async unary(request, context) {
    const requests = [anyPack(UnaryRequestSchema, request)];
    return { payload: await answerOnce(request.responseDefinition, requests, context) };
  },

  async idempotentUnary(request, context) {
    const requests = [anyPack(IdempotentUnaryRequestSchema, request)];
    return { payload: await answerOnce(request.responseDefinition, requests, context) };
  },

  async clientStream(requests, context) {
    let definition: UnaryResponseDefinition | undefined;
    const received: Any[] = [];
    let first = true;
    for await (const request of requests) {
      // Only the first message's definition counts; later ones are ignored (service.proto).
      if (first) definition = request.responseDefinition;
      first = false;
      received.push(anyPack(ClientStreamRequestSchema, request));
    }
    return { payload: await answerOnce(definition, received, context) };
  },

  async *serverStream(request, context) {
    const definition = request.responseDefinition;
    setMetadata(context, definition);
    // Nothing in what the request tells changes while the stream runs, so it is taken once, with
    // the timeout as it was on arrival.
    const info = requestInfo(context, [anyPack(ServerStreamRequestSchema, request)]);
    let sent = 0;
    for (const data of definition?.responseData ?? []) {
      await wait(definition?.responseDelayMs ?? 0, context.signal);
      yield { payload: { data, requestInfo: sent === 0 ? info : undefined } };
      sent++;
    }
    if (definition?.error) throw toConnectError(definition.error, sent === 0 ? info : undefined);
  },

  async *bidiStream(requests, context) {
    let definition: StreamResponseDefinition | undefined;
    let fullDuplex = false;
    let first = true;
    let sent = 0;
    // Requests received since the last response: a full-duplex response echoes only those.
    let received: Any[] = [];
    const responseData = () => definition?.responseData ?? [];
    const delay = () => definition?.responseDelayMs ?? 0;
    for await (const request of requests) {
      received.push(anyPack(BidiStreamRequestSchema, request));
      if (first) {
        definition = request.responseDefinition;
        fullDuplex = request.fullDuplex;
        setMetadata(context, definition);
        first = false;
      }
      if (!fullDuplex) continue;
      const data = responseData()[sent];
      // A request with no response left to send ends the exchange: the error, if any, follows.
      if (data === undefined) break;
      await wait(delay(), context.signal);
      // The first response tells everything about the request; later ones only what was received.
      const info = sent === 0 ? requestInfo(context, received) : { requests: received };
      yield { payload: { data, requestInfo: info } };
      sent++;
      received = [];
    }
    // Half duplex answers only now that the client has finished sending; full duplex sends here
    // what the client's requests were too few to draw out.
    const info = requestInfo(context, received);
    for (const data of responseData().slice(sent)) {
      await wait(delay(), context.signal);
      yield { payload: { data, requestInfo: sent === 0 ? info : undefined } };
      sent++;
    }
    if (definition?.error) throw toConnectError(definition.error, sent === 0 ? info : undefined);
  },

  unimplemented() {
    throw new ConnectError(
      "connectrpc.conformance.v1.ConformanceService.Unimplemented is not implemented",
      Code.Unimplemented,
    );
  },
};

// The answer of a call with one response (unary, idempotent unary, client stream): the payload,
// or the defined error carrying what the request told. The delay applies to a response message,
// as the reference server has it: an error is sent at once.
async function answerOnce(
  definition: UnaryResponseDefinition | undefined,
  requests: Any[],
  context: HandlerContext,
): Promise<Payload> {
  setMetadata(context, definition);
  const info = requestInfo(context, requests);
  if (definition?.response.case === "error") throw toConnectError(definition.response.value, info);
  await wait(definition?.responseDelayMs ?? 0, context.signal);
  const data = definition?.response.case === "responseData" ? definition.response.value : undefined;
  return { data, requestInfo: info };
}

// Response headers and trailers go out with the answer, whether it is a message or an error.
function setMetadata(
  context: HandlerContext,
  definition: UnaryResponseDefinition | StreamResponseDefinition | undefined,
): void {
  appendHeaders(context.responseHeader, definition?.responseHeaders ?? []);
  appendHeaders(context.responseTrailer, definition?.responseTrailers ?? []);
}

function appendHeaders(target: Headers, headers: readonly Header[]): void {
  for (const header of headers) {
    for (const value of header.value) target.append(header.name, value);
  }
}

// What the server saw of the call: its headers, the time left before its deadline, the requests,
// and for a Connect GET the query parameters.
function requestInfo(context: HandlerContext, requests: Any[]): ConformancePayload_RequestInfo {
  const timeoutMs = context.timeoutMs();
  return create(ConformancePayload_RequestInfoSchema, {
    requestHeaders: toProtoHeaders(context.requestHeader),
    requests,
    timeoutMs: timeoutMs === undefined ? undefined : BigInt(Math.max(0, Math.trunc(timeoutMs))),
    connectGetInfo:
      context.requestMethod === "GET" ? { queryParams: queryParams(context.url) } : undefined,
  });
}

// Headers joins the values of a repeated header with ", "; the runner splits them again.
function toProtoHeaders(headers: Headers): MessageInitShape<typeof HeaderSchema>[] {
  return [...headers].map(([name, value]) => ({ name, value: [value] }));
}

function queryParams(url: string) {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of new URL(url, "http://localhost").searchParams) {
    grouped.set(name, [...(grouped.get(name) ?? []), value]);
  }
  return [...grouped].map(([name, value]) => ({ name, value }));
}

// The error the definition asks for. Its details are sent as the Any messages they are, of
// whatever type (the suites use types this program does not know); `info` is appended as the
// reference server does when no response message was sent.
function toConnectError(
  defined: DefinedError,
  info: ConformancePayload_RequestInfo | undefined,
): ConnectError {
  const error = new ConnectError(defined.message ?? "", defined.code as number as Code);
  const details = info
    ? [...defined.details, anyPack(ConformancePayload_RequestInfoSchema, info)]
    : defined.details;
  error.details = details.map((detail) => ({
    type: detail.typeUrl.slice(detail.typeUrl.lastIndexOf("/") + 1),
    value: detail.value,
  }));
  return error;
}

// Waits `ms` before a response, ending early with the call's reason when the call ends first (the
// client went away or the deadline passed), so that no handler outlives its call.
function wait(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
