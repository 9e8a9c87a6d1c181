import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { observeStream } from "./streams.ts";

/**
 * Wraps every RPC handler of `router` against hostile request bodies, where connect-es alone falls
 * short (add it last, once every service is registered):
 * - an enveloped message (gRPC, gRPC-web, Connect streaming) reaches connect-es only once all of it
 *   has arrived: connect-es allocates the length a 5-byte header announces, so streams that send
 *   headers announcing 4 MiB and nothing else would hold gigabytes; a body that ends inside a
 *   message is `invalid_argument`, and one the client abandons is `canceled`, not `internal`;
 * - a request that cannot be decoded (protobuf that does not parse, a message that does not
 *   decompress, a GET with broken base64) is answered `invalid_argument` where connect-es answers
 *   `internal` before any interceptor runs: Connect's error body, gRPC's trailers and gRPC-web's
 *   trailer message are corrected on their way out.
 */
export function guardRequestDecoding(router: ConnectRouter, maxMessageBytes: number): void {
  for (const [index, handler] of router.handlers.entries()) {
    router.handlers[index] = guardHandler(handler, maxMessageBytes);
  }
}

/**
 * What a client is told when its request body cannot be read, by connect-es's path (corrected
 * here) and by the runtime's serving path (serving-path.ts) alike.
 */
export const requestFaults = {
  undecodable: (typeName: string, reason: string) =>
    `cannot decode message ${typeName} from binary: ${reason}`,
  compressedWithoutEncoding:
    "a request message is flagged compressed, but the request names no compression",
  incompleteEnvelope: "protocol error: incomplete envelope",
  undecompressable: "cannot decompress the request message",
} as const;

/**
 * The `invalid_argument` message for one of connect-es's `internal` messages, when that one says
 * the request could not be decoded; undefined for any other message.
 */
export function undecodableMessage(message: string, typeName: string): string | undefined {
  const parse = /^parse binary: (.*)$/s.exec(message);
  if (parse) return requestFaults.undecodable(typeName, parse[1] ?? "");
  if (message === "decompression failed") return requestFaults.undecompressable;
  return undefined;
}

const envelopedContentType = /^application\/(grpc|connect\+)/i;
const grpcInternal = "13";
const grpcInvalidArgument = "3";

function guardHandler(handler: UniversalHandler, maxMessageBytes: number): UniversalHandler {
  const typeName = handler.method.input.typeName;
  const guarded = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const body = req.body;
    const enveloped =
      envelopedContentType.test(req.header.get("content-type") ?? "") && isByteStream(body);
    const res = await handler(
      enveloped ? { ...req, body: reassembleEnvelopes(body, maxMessageBytes) } : req,
    );
    const contentType = res.header?.get("content-type") ?? "";
    if (contentType.startsWith("application/grpc-web")) {
      return res.body ? { ...res, body: correctGrpcWebTrailer(res.body, typeName) } : res;
    }
    if (contentType.startsWith("application/grpc")) {
      const trailer = res.trailer;
      return res.body && trailer
        ? { ...res, body: correctGrpcTrailer(res.body, trailer, typeName) }
        : res;
    }
    if (res.status >= 500 && contentType === "application/json" && res.body) {
      return correctConnectError(res, res.body, typeName, req);
    }
    return res;
  };
  return Object.assign(guarded, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof (body as AsyncIterable<Uint8Array> | null)?.[Symbol.asyncIterator] === "function";
}

/**
 * Passes on each envelope (5-byte header and message) only once all of it has arrived, so that
 * what the server holds is what the client actually sent. A header announcing more than
 * `maxMessageBytes` is passed on at once, for connect-es to refuse (resource_exhausted).
 */
async function* reassembleEnvelopes(
  body: AsyncIterable<Uint8Array>,
  maxMessageBytes: number,
): AsyncIterable<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queued = 0;
  const take = (count: number): Buffer => {
    const parts: Uint8Array[] = [];
    let taken = 0;
    while (taken < count) {
      const chunk = queue.shift() as Uint8Array;
      const wanted = count - taken;
      if (chunk.byteLength > wanted) {
        parts.push(chunk.subarray(0, wanted));
        queue.unshift(chunk.subarray(wanted));
        taken += wanted;
      } else {
        parts.push(chunk);
        taken += chunk.byteLength;
      }
    }
    queued -= count;
    return Buffer.concat(parts);
  };
  let header: Buffer | undefined;
  const chunks = body[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (error) {
        done = true;
        if (error instanceof ConnectError) throw error;
        // The request stream broke (a reset, a premature close): the client went away.
        throw new ConnectError(
          "the request ended early",
          Code.Canceled,
          undefined,
          undefined,
          error,
        );
      }
      if (next.done) {
        done = true;
        break;
      }
      queue.push(next.value);
      queued += next.value.byteLength;
      for (;;) {
        if (header === undefined) {
          if (queued < 5) break;
          header = take(5);
          if (header.readUInt32BE(1) > maxMessageBytes) {
            yield header;
            return;
          }
        }
        const length = header.readUInt32BE(1);
        if (queued < length) break;
        yield Buffer.concat([header, take(length)]);
        header = undefined;
      }
    }
  } finally {
    if (!done) discardRest(chunks, maxMessageBytes);
  }
  if (header !== undefined || queued > 0) {
    throw new ConnectError(requestFaults.incompleteEnvelope, Code.InvalidArgument);
  }
}

/**
 * Reads and drops what is left of a request whose handler stopped reading it (a message too large,
 * an error), at most `budget` bytes for at most 5 s, before giving up on it. Returning the
 * iterator at once would destroy the request, and over HTTP/1.1 its connection, so that the
 * client, still sending, would get a reset instead of the answer (RFC 9112, section 9.6).
 */
function discardRest(chunks: AsyncIterator<Uint8Array>, budget: number): void {
  const giveUp = AbortSignal.timeout(5_000);
  const stop = () => {
    chunks.return?.().catch(() => {});
  };
  giveUp.addEventListener("abort", stop);
  (async () => {
    let discarded = 0;
    for (;;) {
      const next = await chunks.next();
      if (next.done || giveUp.aborted) return;
      discarded += next.value.byteLength;
      if (discarded > budget) return stop();
    }
  })()
    .catch(() => {})
    .finally(() => giveUp.removeEventListener("abort", stop));
}

async function correctConnectError(
  res: UniversalServerResponse,
  body: AsyncIterable<Uint8Array>,
  typeName: string,
  req: UniversalServerRequest,
): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let error: { code?: unknown; message?: unknown } = {};
  try {
    error = JSON.parse(bytes.toString("utf8")) as typeof error;
  } catch {
    // Not an error body this guard knows; passed on unchanged.
  }
  let message: string | undefined;
  if (error.code === "internal" && typeof error.message === "string") {
    message =
      error.message === "internal error"
        ? brokenBase64(req)
          ? "the message query parameter is not valid base64"
          : undefined
        : undecodableMessage(error.message, typeName);
  }
  if (message === undefined) return { ...res, body: once(bytes) };
  const corrected = Buffer.from(JSON.stringify({ code: "invalid_argument", message }));
  const header = new Headers(res.header);
  header.set("content-length", String(corrected.byteLength));
  return { ...res, status: 400, header, body: once(corrected) };
}

// A Connect GET whose base64 `message` fails to decode ends in connect-es's generic `internal`.
function brokenBase64(req: UniversalServerRequest): boolean {
  if (req.method !== "GET") return false;
  const query = new URL(req.url, "http://localhost").searchParams;
  if (query.get("base64") !== "1") return false;
  try {
    base64Decode(query.get("message") ?? "");
    return false;
  } catch {
    return true;
  }
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

// gRPC sends the status in trailers after the body; they are final once the body has ended.
function correctGrpcTrailer(
  body: AsyncIterable<Uint8Array>,
  trailer: Headers,
  typeName: string,
): AsyncIterable<Uint8Array> {
  return observeStream(body, {
    onEnd({ error, closed }) {
      if (error !== undefined || closed) return;
      const sent = trailer.get("grpc-message");
      if (sent === null) return;
      const message = decodeGrpcMessage(sent);
      const corrected =
        trailer.get("grpc-status") === grpcInternal
          ? undecodableMessage(message, typeName)
          : undefined;
      if (corrected !== undefined) trailer.set("grpc-status", grpcInvalidArgument);
      trailer.set("grpc-message", encodeGrpcMessage(corrected ?? message));
    },
  });
}

/**
 * `message` as the gRPC specification encodes grpc-message: only '%' and what is not printable
 * ASCII is percent-encoded. connect-es encodes as encodeURIComponent does, ':' '@' ',' and '/'
 * included, and grpc-js decodes with decodeURI, which leaves those as %3A, %40, %2C: its users
 * would read "email must be an email address like ada%40example.com".
 */
export function encodeGrpcMessage(message: string): string {
  let encoded = "";
  for (const byte of new TextEncoder().encode(message)) {
    encoded +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

// gRPC-web sends the status as the last message of the body, flagged 0x80 (uncompressed).
function correctGrpcWebTrailer(
  body: AsyncIterable<Uint8Array>,
  typeName: string,
): AsyncIterable<Uint8Array> {
  return observeStream(body, {
    map: (chunk) => (chunk[0] === 0x80 ? correctGrpcWebTrailerMessage(chunk, typeName) : chunk),
  });
}

function correctGrpcWebTrailerMessage(chunk: Uint8Array, typeName: string): Uint8Array {
  const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (bytes.length < 5 || bytes.readUInt32BE(1) !== bytes.length - 5) return chunk;
  const fields = new Map<string, string>();
  for (const line of bytes.subarray(5).toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  if (fields.get("grpc-status") !== grpcInternal) return chunk;
  const message = undecodableMessage(
    decodeGrpcMessage(fields.get("grpc-message") ?? null),
    typeName,
  );
  if (message === undefined) return chunk;
  fields.set("grpc-status", grpcInvalidArgument);
  fields.set("grpc-message", encodeGrpcMessage(message));
  const text = Buffer.from([...fields].map(([key, value]) => `${key}: ${value}\r\n`).join(""));
  const header = Buffer.alloc(5);
  header.writeUInt8(0x80, 0);
  header.writeUInt32BE(text.length, 1);
  return Buffer.concat([header, text]);
}

function decodeGrpcMessage(value: string | null): string {
  if (value === null) return "";
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
