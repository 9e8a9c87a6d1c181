import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";

// What the interceptors that look at streams share: how to call on, which calls answer with a
// stream, and the stages they add to a stream's messages (stream-stages.ts).

/** What an interceptor calls on to: the next interceptor, or the handler. */
export type Next = Parameters<Interceptor>[0];
/** A request as interceptors see it. */
export type AnyRequest = UnaryRequest | StreamRequest;

/** `next(req)`, with a synchronous throw turned into a rejection. */
export function callNext(next: Next, req: AnyRequest): ReturnType<Next> {
  try {
    return next(req);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Whether calls to `method` answer with a stream (server-streaming and bidi methods). Interceptors
 * that only act on streams pass other calls straight on, without a promise of their own.
 */
export function answersWithStream(method: DescMethod): boolean {
  return method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
}

/**
 * An interceptor that acts on calls answering with a stream only (through `wrap`), and passes
 * every other call straight on.
 */
export function onStreamsOnly(
  wrap: (next: Next, req: AnyRequest) => ReturnType<Next>,
): Interceptor {
  const interceptor: Interceptor = (next) => (req) =>
    answersWithStream(req.method) ? wrap(next, req) : next(req);
  streamsOnly.add(interceptor);
  return interceptor;
}

const streamsOnly = new WeakSet<Interceptor>();

/**
 * Whether `interceptor` passes every call that does not answer with a stream straight on (it was
 * made by onStreamsOnly): a chain built for one unary method can leave it out.
 */
export function actsOnStreamsOnly(interceptor: Interceptor): boolean {
  return streamsOnly.has(interceptor);
}

export {
  observeStream,
  type StopArm,
  type StreamEnd,
  type StreamHooks,
  stopStreamOn,
} from "./stream-stages.ts";
