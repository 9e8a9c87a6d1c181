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
  return new ObservedIterator(messages, hooks);
}

// The wrappers below are classes rather than objects of closures: a watch holds one of each for
// as long as it is open, and closures (with their contexts) made for each watch cost about 5 KiB
// of heap per watcher over the interceptors' layers; methods on a prototype cost nothing per watch.

/**
 * A wrapped stream that is also its own iterator once read: a response stream is read once, and
 * a watch then holds one object per wrapper instead of two.
 */
abstract class ReadOnce<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private messages: AsyncIterable<T> | undefined;
  protected iterator!: AsyncIterator<T>;

  constructor(messages: AsyncIterable<T>) {
    this.messages = messages;
  }

  [Symbol.asyncIterator](): this {
    // Asked again (a handler that reads a few messages, then loops over the rest), it is the same
    // iterator, as an async generator is.
    if (this.messages === undefined) return this;
    this.iterator = this.messages[Symbol.asyncIterator]();
    this.messages = undefined;
    this.opened();
    return this;
  }

  /** Called once reading starts. */
  protected opened(): void {}

  abstract next(): Promise<IteratorResult<T>>;
}

/** The stream of observeStream. */
class ObservedIterator<T> extends ReadOnce<T> {
  private readonly hooks: StreamHooks<T>;
  private ended = false;

  constructor(messages: AsyncIterable<T>, hooks: StreamHooks<T>) {
    super(messages);
    this.hooks = hooks;
  }

  next(): Promise<IteratorResult<T>> {
    const { pull } = this.hooks;
    const pulled = pull ? pull(() => this.iterator.next()) : this.iterator.next();
    return pulled.then(
      (result) => {
        if (result.done) this.end({ closed: false });
        else if (this.hooks.map) return { done: false, value: this.hooks.map(result.value) };
        return result;
      },
      (cause: unknown) => this.fail(cause),
    );
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    // Ended once the producer has returned, as an async generator's `finally` would be: by then
    // the call's signal says whether the client went away.
    const { iterator } = this;
    if (!iterator.return) {
      this.end({ closed: true });
      return Promise.resolve({ done: true as const, value: undefined });
    }
    return iterator.return(value).then(
      (result) => {
        this.end({ closed: true });
        return result;
      },
      (error: unknown) => {
        this.end({ error, closed: true });
        throw error;
      },
    );
  }

  // Connect throws a failed write into the stream; what comes out is mapped like any error.
  throw(error?: unknown): Promise<IteratorResult<T>> {
    const { iterator } = this;
    const thrown = iterator.throw ? iterator.throw(error) : Promise.reject(error);
    return thrown.then(
      (result) => {
        if (result.done) this.end({ closed: false });
        return result;
      },
      (cause: unknown) => this.fail(cause),
    );
  }

  private fail(cause: unknown): never {
    const error = this.hooks.mapError ? this.hooks.mapError(cause) : cause;
    this.end({ error, closed: false });
    throw error;
  }

  private end(how: StreamEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.hooks.onEnd?.(how);
  }
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
  return new StoppableIterator(messages, arm);
}

/** The stream of stopStreamOn. */
class StoppableIterator<T> extends ReadOnce<T> {
  private readonly arm: (stop: (error: unknown) => void) => () => void;
  private stopped: { error: unknown } | undefined;
  private rejectPending: ((error: unknown) => void) | undefined;
  private disarm: (() => void) | undefined;

  constructor(messages: AsyncIterable<T>, arm: (stop: (error: unknown) => void) => () => void) {
    super(messages);
    this.arm = arm;
  }

  protected override opened(): void {
    const disarm = this.arm((error) => this.stop(error));
    if (this.stopped) disarm();
    else this.disarm = disarm;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.stopped) return Promise.reject(this.stopped.error);
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.rejectPending = reject;
      this.iterator.next().then(
        (result) => {
          this.rejectPending = undefined;
          if (result.done) this.finish();
          resolve(result);
        },
        (error: unknown) => {
          this.rejectPending = undefined;
          this.finish();
          reject(error);
        },
      );
    });
  }

  return(): Promise<IteratorResult<T>> {
    // The producer may be waiting for its next change; it ends on its call's signal, and the
    // stream is closed now rather than when it gets there.
    this.finish();
    this.iterator.return?.().catch(() => {});
    return Promise.resolve({ done: true as const, value: undefined });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.finish();
    this.iterator.return?.().catch(() => {});
    return Promise.reject(error);
  }

  private stop(error: unknown): void {
    if (this.stopped) return;
    this.stopped = { error };
    this.finish();
    this.rejectPending?.(error);
    this.rejectPending = undefined;
    this.iterator.return?.().catch(() => {});
  }

  private finish(): void {
    this.disarm?.();
    this.disarm = undefined;
  }
}
