import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";

// Every interceptor of the runtime that looks at a stream (metrics, statistics, errors, shutdown,
// token expiry, the per-client cap) wraps the stream's messages. Written as async generators, each
// layer costs several promise jobs per message and per watcher; these wrappers forward `next()`
// with one reaction instead, which matters when one change goes out to a thousand watchers.

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

/** How a stream ended, as its wrapper saw it. */
export interface StreamEnd {
  /** The error it failed with (after `mapError`), if it failed. */
  error?: unknown;
  /** True when its reader closed it before it was done (`return()`). */
  closed: boolean;
}

/** What to do with a stream's messages and its end. */
export interface StreamHooks<T> {
  /** Asks the stream for its next message (to run the producer in some context, say). */
  pull?(next: () => Promise<IteratorResult<T>>): Promise<IteratorResult<T>>;
  /** Replaces each message. */
  map?(message: T): T;
  /** Replaces the error the stream fails with. */
  mapError?(error: unknown): unknown;
  /**
   * Called once, when the stream is done, fails, or is closed (also before its first message; for
   * a closed stream, once its producer has returned).
   */
  onEnd?(end: StreamEnd): void;
}

/** `messages` with `hooks` applied. */
export function observeStream<T>(
  messages: AsyncIterable<T>,
  hooks: StreamHooks<T>,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = messages[Symbol.asyncIterator]();
      let ended = false;
      const end = (how: StreamEnd) => {
        if (ended) return;
        ended = true;
        hooks.onEnd?.(how);
      };
      const { map, mapError, pull } = hooks;
      const next = () => iterator.next();
      return {
        next() {
          return (pull ? pull(next) : next()).then(
            (result) => {
              if (result.done) end({ closed: false });
              else if (map) return { done: false, value: map(result.value) };
              return result;
            },
            (cause: unknown) => {
              const error = mapError ? mapError(cause) : cause;
              end({ error, closed: false });
              throw error;
            },
          );
        },
        return(value?: unknown) {
          // Ended once the producer has returned, as an async generator's `finally` would be: by
          // then the call's signal says whether the client went away.
          if (!iterator.return) {
            end({ closed: true });
            return Promise.resolve({ done: true as const, value: undefined });
          }
          return iterator.return(value).then(
            (result) => {
              end({ closed: true });
              return result;
            },
            (error: unknown) => {
              end({ error, closed: true });
              throw error;
            },
          );
        },
        // Connect throws a failed write into the stream; what comes out is mapped like any error.
        throw(error?: unknown) {
          const thrown = iterator.throw ? iterator.throw(error) : Promise.reject(error);
          return thrown.then(
            (result) => {
              if (result.done) end({ closed: false });
              return result;
            },
            (cause: unknown) => {
              const mapped = mapError ? mapError(cause) : cause;
              end({ error: mapped, closed: false });
              throw mapped;
            },
          );
        },
      };
    },
  };
}

/**
 * `messages`, ended with an error as soon as `arm` calls its `stop` (also while the stream waits
 * for its next message). `arm` runs when reading starts and returns how to disarm it, which happens
 * when the stream ends in any way. When stopped or closed, the producer is told to return and is
 * not waited for: it ends on its call's signal.
 */
export function stopStreamOn<T>(
  messages: AsyncIterable<T>,
  arm: (stop: (error: unknown) => void) => () => void,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = messages[Symbol.asyncIterator]();
      let stopped: { error: unknown } | undefined;
      let rejectPending: ((error: unknown) => void) | undefined;
      let disarm: (() => void) | undefined;
      const finish = () => {
        disarm?.();
        disarm = undefined;
      };
      const stop = (error: unknown) => {
        if (stopped) return;
        stopped = { error };
        finish();
        rejectPending?.(error);
        rejectPending = undefined;
        iterator.return?.().catch(() => {});
      };
      const disarmer = arm(stop);
      if (stopped) disarmer();
      else disarm = disarmer;
      return {
        next() {
          if (stopped) return Promise.reject(stopped.error);
          return new Promise<IteratorResult<T>>((resolve, reject) => {
            rejectPending = reject;
            iterator.next().then(
              (result) => {
                rejectPending = undefined;
                if (result.done) finish();
                resolve(result);
              },
              (error: unknown) => {
                rejectPending = undefined;
                finish();
                reject(error);
              },
            );
          });
        },
        return() {
          // The producer may be waiting for its next change; it ends on its call's signal, and
          // the stream is closed now rather than when it gets there.
          finish();
          iterator.return?.().catch(() => {});
          return Promise.resolve({ done: true as const, value: undefined });
        },
        throw(error?: unknown) {
          finish();
          iterator.return?.().catch(() => {});
          return Promise.reject(error);
        },
      };
    },
  };
}
