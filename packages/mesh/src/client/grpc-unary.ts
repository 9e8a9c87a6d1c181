import * as http2 from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import {
  compressedFlag,
  EnvelopeBuffer,
  envelope,
  envelopeHeaderBytes,
  messageOf,
} from "../protocol/envelope.ts";
import { decodeGrpcMessage } from "../protocol/grpc-message.ts";
import { IncomingHeaders } from "../protocol/incoming-headers.ts";
import { messageTooLarge } from "../protocol/serving-path.ts";

// Unary gRPC calls of the mesh's outbound clients, written straight to an HTTP/2 stream of
// connect-node's session manager (which keeps the connection: connects, pings, reconnects).
// connect-node's gRPC transport runs each call through its streaming machinery (a pipeline of
// async iterables, a Web request and response, an AbortController and a DOMException per call);
// service-to-service calls are almost all unary, and that machinery cost more CPU per order
// than the calls' own work (bench/README.md). Streams still go through connect-node's transport,
// on the same session. This is the client-side counterpart of the serving path
// (protocol/serving-path.ts); no library offers a leaner unary call that plugs into connect-es's
// clients, hence this code.

/** One unary call: what connect-es's `Transport.unary` gets, without its context values. */
export type UnaryCaller = <I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: Headers,
  input: MessageInitShape<I>,
) => Promise<UnaryResponse<I, O>>;

// The largest timeout the grpc-timeout header carries in milliseconds (8 digits).
const maxTimeoutMs = 99_999_999;

/** Creates the unary caller of one upstream address. */
export function createGrpcUnaryCaller(options: {
  baseUrl: string;
  sessionManager: Http2SessionManager;
  /** Largest response message accepted, in bytes. */
  maxMessageBytes: number;
}): UnaryCaller {
  const prefix = new URL(options.baseUrl).pathname.replace(/\/+$/, "");
  const { sessionManager, maxMessageBytes } = options;
  return async <I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: Headers,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> => {
    if (signal?.aborted) throw abortError(signal);
    const headers: http2.OutgoingHttpHeaders = {
      "content-type": "application/grpc+proto",
      te: "trailers",
    };
    if (timeoutMs !== undefined) {
      headers["grpc-timeout"] = `${Math.min(maxTimeoutMs, Math.max(1, Math.ceil(timeoutMs)))}m`;
    }
    header.forEach((value, name) => {
      headers[name] = value;
    });
    const body = envelope(toBinary(method.input, create(method.input, input)));
    const opening = sessionManager.request(
      "POST",
      `${prefix}/${method.parent.typeName}/${method.name}`,
      headers,
      {},
    );
    return exchange(
      sessionManager,
      opening,
      method,
      body,
      signal,
      timeoutMs,
      maxMessageBytes,
    ) as Promise<UnaryResponse<I, O>>;
  };
}

/**
 * Sends `body` on the stream `opening` resolves to and reads the answer: headers, one message,
 * trailers. The deadline and `signal` bound the whole call, the wait for a connection included; a
 * stream that opens after the call is over is cancelled.
 */
function exchange(
  sessionManager: Http2SessionManager,
  opening: Promise<http2.ClientHttp2Stream>,
  method: DescMethodUnary,
  body: Buffer,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  maxMessageBytes: number,
): Promise<UnaryResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let stream: http2.ClientHttp2Stream | undefined;
    let responseHeaders: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const received = new EnvelopeBuffer();
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => fail(abortError(signal as AbortSignal));
    const cleanUp = () => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (error: ConnectError) => {
      if (settled) return;
      cleanUp();
      // The call is over for this side: the stream is cancelled if it is still open.
      if (stream !== undefined && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(error);
    };
    const send = (stream: http2.ClientHttp2Stream) => {
      stream.on("response", (headers) => {
        responseHeaders = headers;
      });
      stream.on("data", (chunk: Buffer) => {
        received.push(chunk);
        sessionManager.notifyResponseByteRead(stream);
        // An answer larger than the limit is refused as soon as its envelope announces it (or
        // its bytes alone are over), not read to the end first.
        const size = Math.max(received.announced(), received.size - envelopeHeaderBytes);
        if (size > maxMessageBytes) fail(messageTooLarge(size, "readMaxBytes", maxMessageBytes));
      });
      stream.on("trailers", (fields) => {
        trailers = fields;
      });
      stream.on("error", (error: Error) => fail(streamError(error, stream.rstCode)));
      stream.on("close", () => {
        if (settled) return;
        const reset =
          stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
        if (responseHeaders === undefined || (reset && trailers === undefined)) {
          // Reset (or the connection lost) before the answer was complete.
          fail(resetError(stream.rstCode));
          return;
        }
        try {
          const message = answer(method, responseHeaders, trailers, received);
          cleanUp();
          resolve({
            stream: false,
            service: method.parent,
            method,
            header: new IncomingHeaders(responseHeaders),
            trailer: new IncomingHeaders(trailers ?? {}),
            message: message as UnaryResponse["message"],
          });
        } catch (error) {
          fail(ConnectError.from(error, Code.Internal));
        }
      });
      stream.end(body);
    };

    if (timeoutMs !== undefined) {
      timer = setTimeout(
        () => fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    opening.then(
      (opened) => {
        if (settled) {
          opened.on("error", () => {});
          opened.close(http2.constants.NGHTTP2_CANCEL);
          return;
        }
        stream = opened;
        send(opened);
      },
      (error: unknown) => fail(connectionError(error)),
    );
  });
}

/** The response message, or the error the answer carries, as connect-es reads a gRPC answer. */
function answer(
  method: DescMethodUnary,
  headers: http2.IncomingHttpHeaders,
  trailers: http2.IncomingHttpHeaders | undefined,
  body: EnvelopeBuffer,
): unknown {
  const status = Number(headers[":status"]);
  if (status !== 200) {
    throw new ConnectError(
      `HTTP ${status}`,
      codeFromHttpStatus(status),
      metadataOf(headers, trailers),
    );
  }
  const contentType = String(headers["content-type"] ?? "");
  if (!contentType.startsWith("application/grpc")) {
    throw new ConnectError(`unexpected content type "${contentType}"`, Code.Internal);
  }
  // Trailers-only answers carry the status with the headers.
  const fields = trailers ?? headers;
  const code = fields["grpc-status"];
  if (code === undefined) {
    throw new ConnectError("protocol error: missing status", Code.Internal);
  }
  if (code !== "0") {
    const message = fields["grpc-message"];
    const error = new ConnectError(
      typeof message === "string" ? decodeGrpcMessage(message) : "",
      codeOf(Number(code)),
      metadataOf(headers, trailers),
    );
    error.details = detailsOf(fields);
    throw error;
  }
  if (body.size < envelopeHeaderBytes) {
    throw new ConnectError(
      "protocol error: missing output message for unary method",
      Code.Unimplemented,
    );
  }
  if (body.flags() & compressedFlag) {
    throw new ConnectError(
      "protocol error: received compressed output without encoding",
      Code.Internal,
    );
  }
  const frame = body.take();
  if (frame === undefined) {
    throw new ConnectError("protocol error: incomplete envelope", Code.Internal);
  }
  if (body.size > 0) {
    throw new ConnectError(
      "protocol error: received extra output message for unary method",
      Code.Unimplemented,
    );
  }
  return fromBinary(method.output, messageOf(frame));
}

/**
 * The error details of a status (google.rpc.Status in grpc-status-details-bin), as connect-es
 * reads them; none when there are none or they do not decode.
 */
function detailsOf(fields: http2.IncomingHttpHeaders): ConnectError["details"] {
  if (fields["grpc-status-details-bin"] === undefined) return [];
  try {
    return findTrailerError(new IncomingHeaders(fields))?.details ?? [];
  } catch {
    return [];
  }
}

function codeOf(value: number): Code {
  return Number.isInteger(value) && value >= 1 && value <= 16 ? (value as Code) : Code.Unknown;
}

/** The code of a non-200 HTTP answer, as the gRPC spec maps them. */
function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

function abortError(signal: AbortSignal): ConnectError {
  return ConnectError.from(
    signal.reason ?? new ConnectError("the call was aborted", Code.Canceled),
    Code.Canceled,
  );
}

/** A connection failure, as `unavailable` with the Node error as its cause (the retry policy reads its code). */
function connectionError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ConnectError(message, Code.Unavailable, undefined, undefined, error);
}

/** The error of a stream that failed: by its RST_STREAM code when the server reset it. */
function streamError(error: unknown, rstCode: number | undefined): ConnectError {
  const code = (error as { code?: unknown }).code;
  if (code !== "ERR_HTTP2_STREAM_ERROR" || rstCode === undefined) return connectionError(error);
  return resetError(rstCode, error);
}

/**
 * A stream the server reset (or that closed before its answer was complete), with the codes of
 * the gRPC spec for RST_STREAM: cancel is `canceled`, refused is `unavailable` (safe to retry),
 * and so on; a close without a reset (the connection went away) is `unavailable`.
 */
function resetError(rstCode: number | undefined, cause?: unknown): ConnectError {
  const reason =
    cause ??
    Object.assign(new Error(`stream closed with RST_STREAM code ${rstCode ?? "none"}`), {
      code:
        rstCode === http2.constants.NGHTTP2_CANCEL
          ? "ERR_HTTP2_STREAM_CANCEL"
          : "ERR_HTTP2_STREAM_ERROR",
    });
  const message = reason instanceof Error ? reason.message : String(reason);
  const of = (code: Code) => new ConnectError(message, code, undefined, undefined, reason);
  switch (rstCode) {
    case undefined:
    case http2.constants.NGHTTP2_NO_ERROR:
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return of(Code.Unavailable);
    case http2.constants.NGHTTP2_CANCEL:
      return of(Code.Canceled);
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return of(Code.ResourceExhausted);
    case http2.constants.NGHTTP2_INADEQUATE_SECURITY:
      return of(Code.PermissionDenied);
    default:
      return of(Code.Internal);
  }
}

function metadataOf(
  headers: http2.IncomingHttpHeaders,
  trailers: http2.IncomingHttpHeaders | undefined,
): Headers {
  const metadata = new Headers(new IncomingHeaders(headers));
  if (trailers) {
    for (const [name, value] of new IncomingHeaders(trailers)) metadata.append(name, value);
  }
  for (const name of ["grpc-status", "grpc-message", "grpc-status-details-bin", "content-type"]) {
    metadata.delete(name);
  }
  return metadata;
}
