// A stream of messages with stages applied as they pass: observers (map a message, map an error,
// learn of the end) and stops (end the stream early with an error, also while it waits for its
// next message). Every interceptor of the runtime that looks at a response stream (metrics,
// statistics, errors, shutdown, token expiry, the per-client cap), the domain's conversions and
// the serving path itself add a stage. Stages added to a stream that nobody reads yet join it
// instead of wrapping it: a watch then waits on one pending read and holds one object, where a
// wrapper per stage held a promise, a reaction and two closures each for as long as it was open
// (about 2 KB per watcher over seven stages). No library offers this; async generators cost
// several promise jobs per message and stage.
//
// The stages behave as the same stages would, each wrapping the one before (the first is the
// innermost): a message passes through the observers' `map` in order; an error through their
// `mapError`; a stop fails the stream for the stages after it, and closes it for those before it
// (the producer is told to return, and those observers end once it has).

/** How a stream ended, as its stage saw it. */
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

/**
 * Arms a stop when reading starts: `stop` ends the stream with an error. Returns how to disarm it,
 * which happens when the stream ends in any way.
 */
export type StopArm = (stop: (error: unknown) => void) => () => void;

/**
 * `messages` with `hooks` applied. `messages` is read through the result only: a stream no one
 * reads yet takes the hooks as a stage of its own and is returned.
 */
export function observeStream<T>(
  messages: AsyncIterable<T>,
  hooks: StreamHooks<T>,
): AsyncIterable<T> {
  return staged(messages, hooks);
}

/**
 * `messages`, ended with an error as soon as `arm` calls its `stop` (also while the stream waits
 * for its next message). `arm` runs when reading starts. When stopped or closed, the producer is
 * told to return and is not waited for: it ends on its call's signal.
 */
export function stopStreamOn<T>(messages: AsyncIterable<T>, arm: StopArm): AsyncIterable<T> {
  return staged(messages, arm);
}

type Stage<T> = StreamHooks<T> | StopArm;

// The stages' ended flags are the bits of a number.
const maxStages = 30;
const done = Promise.resolve({ done: true as const, value: undefined });

function staged<T>(messages: AsyncIterable<T>, stage: Stage<T>): AsyncIterable<T> {
  if (messages instanceof StagedStream && messages.takes()) {
    (messages as StagedStream<T>).add(stage);
    return messages;
  }
  return new StagedStream(messages, stage);
}

/** A stream and its stages; its own iterator once read (a response stream is read once). */
class StagedStream<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private source: AsyncIterable<T> | undefined;
  private iterator!: AsyncIterator<T>;
  private stages: Stage<T>[];
  /** Bit i: stage i has ended (an observer told of the end, a stop disarmed). */
  private ended = 0;
  private pulls = 0;
  /** Each stop's disarm, by stage; undefined without stops. */
  private disarms: ((() => void) | undefined)[] | undefined;
  /** The first stop: its stage, and the error the stages after it fail with once told. */
  private stopped: { at: number; error: unknown; told: boolean } | undefined;
  // The read waiting for its message, while a stop may end it first.
  private resolvePending: ((result: IteratorResult<T>) => void) | undefined;
  private rejectPending: ((error: unknown) => void) | undefined;

  constructor(source: AsyncIterable<T>, stage: Stage<T>) {
    this.source = source;
    this.stages = [];
    this.add(stage);
  }

  /** Whether a stage may still join: nobody reads the stream yet, and it has room. */
  takes(): boolean {
    return this.source !== undefined && this.stages.length < maxStages;
  }

  add(stage: Stage<T>): void {
    this.stages.push(stage);
    if (typeof stage !== "function" && stage.pull) this.pulls++;
  }

  [Symbol.asyncIterator](): this {
    // Asked again (a handler that reads a few messages, then loops over the rest), it is the same
    // iterator, as an async generator is.
    const source = this.source;
    if (source === undefined) return this;
    this.iterator = source[Symbol.asyncIterator]();
    this.source = undefined;
    // The stages are final now: held in arrays of their exact length for as long as it is open.
    const stages = this.stages.slice();
    this.stages = stages;
    // Stops are armed as reading starts, the innermost first.
    for (let index = 0; index < stages.length; index++) {
      const stage = stages[index];
      if (typeof stage !== "function") continue;
      this.disarms ??= new Array<undefined>(stages.length).fill(undefined);
      const disarm = stage((error) => this.stop(index, error));
      if (this.hasEnded(index)) disarm();
      else this.disarms[index] = disarm;
    }
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.stopped !== undefined) return Promise.reject(this.stoppedError());
    const pulled = this.pull();
    if (this.disarms === undefined) {
      return pulled.then(
        (result) => this.passed(result),
        (error: unknown) => this.failed(0, error),
      );
    }
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.resolvePending = resolve;
      this.rejectPending = reject;
      pulled.then(
        (result) => {
          const settle = this.takePending();
          if (settle === undefined) {
            // A stop ended the read first: the stages before it still see the end.
            if (result.done) this.endUpTo(this.stopped?.at ?? 0);
            return;
          }
          try {
            settle.resolve(this.passed(result));
          } catch (error) {
            settle.reject(error);
          }
        },
        (cause: unknown) => {
          const settle = this.takePending();
          if (settle === undefined) return;
          try {
            this.failed(0, cause);
          } catch (error) {
            settle.reject(error);
          }
        },
      );
    });
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    return this.closeFrom(this.stages.length - 1, value);
  }

  // Connect throws a failed write into the stream; what comes out is mapped like any error.
  throw(error?: unknown): Promise<IteratorResult<T>> {
    const stop = this.outermostStop();
    if (stop >= 0) {
      // The stop closes what is before it and fails what is after it.
      this.endStop(stop);
      this.closeFrom(stop - 1).catch(() => {});
      try {
        this.failed(stop + 1, error);
      } catch (mapped) {
        return Promise.reject(mapped);
      }
    }
    const { iterator } = this;
    const thrown = iterator.throw ? iterator.throw(error) : Promise.reject(error);
    return thrown.then(
      (result) => {
        if (result.done) this.endUpTo(this.stages.length);
        return result;
      },
      (cause: unknown) => this.failed(0, cause),
    );
  }

  private pull(): Promise<IteratorResult<T>> {
    if (this.pulls === 0) return this.iterator.next();
    let next = () => this.iterator.next();
    for (const stage of this.stages) {
      if (typeof stage === "function" || !stage.pull) continue;
      const inner = next;
      const { pull } = stage;
      next = () => pull.call(stage, inner);
    }
    return next();
  }

  /** `result` through every stage: each observer's map, or the end. */
  private passed(result: IteratorResult<T>): IteratorResult<T> {
    const { stages } = this;
    if (result.done) {
      this.endUpTo(stages.length);
      return result;
    }
    let value = result.value;
    let mapped = false;
    for (let index = 0; index < stages.length; index++) {
      const stage = stages[index] as Stage<T>;
      if (typeof stage === "function" || !stage.map) continue;
      try {
        value = stage.map(value);
        mapped = true;
      } catch (error) {
        // What a stage's map throws, the stages after it see as the stream's error.
        this.failed(index + 1, error);
      }
    }
    return mapped ? { done: false, value } : result;
  }

  /** Fails the stages from `from` on with `error`, each mapping it in turn; throws what is left. */
  private failed(from: number, error: unknown): never {
    const { stages } = this;
    let current = error;
    for (let index = from; index < stages.length; index++) {
      const stage = stages[index] as Stage<T>;
      if (typeof stage === "function") {
        this.endStop(index);
        continue;
      }
      if (stage.mapError) current = stage.mapError(current);
      this.endObserver(index, { error: current, closed: false });
    }
    throw current;
  }

  /** Stage `at` stops the stream with `error`. */
  private stop(at: number, error: unknown): void {
    if (this.stopped !== undefined || this.hasEnded(at)) return;
    this.stopped = { at, error, told: false };
    this.endStop(at);
    this.closeFrom(at - 1).catch(() => {});
    const settle = this.takePending();
    if (settle !== undefined) settle.reject(this.stoppedError());
  }

  /** What the stages after a stop fail with; they are told once. */
  private stoppedError(): unknown {
    const stopped = this.stopped as { at: number; error: unknown; told: boolean };
    if (!stopped.told) {
      stopped.told = true;
      try {
        this.failed(stopped.at + 1, stopped.error);
      } catch (mapped) {
        stopped.error = mapped;
      }
    }
    return stopped.error;
  }

  /**
   * Closes the stages up to `top`, outermost first, as `return()` passed inwards would: a stop
   * disarms and answers at once (the producer is not waited for), so the observers after it end
   * then; the observers before the first stop end once the producer has returned.
   */
  private closeFrom(top: number, value?: unknown): Promise<IteratorResult<T>> {
    let waiting: number[] | undefined;
    let answered = false;
    for (let index = top; index >= 0; index--) {
      if (typeof this.stages[index] === "function") {
        this.endStop(index);
        if (waiting !== undefined) this.endEach(waiting, { closed: true });
        waiting = undefined;
        answered = true;
      } else {
        waiting ??= [];
        waiting.push(index);
      }
    }
    const { iterator } = this;
    const returned = iterator.return?.(value);
    if (returned === undefined) {
      if (waiting !== undefined) this.endEach(waiting, { closed: true });
      return done;
    }
    const closing = returned.then(
      (result) => {
        if (waiting !== undefined) this.endEach(waiting, { closed: true });
        return result;
      },
      (error: unknown) => {
        if (waiting !== undefined) this.endEach(waiting, { error, closed: true });
        throw error;
      },
    );
    if (!answered) return closing;
    closing.catch(() => {});
    return done;
  }

  private takePending():
    | { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void }
    | undefined {
    const resolve = this.resolvePending;
    const reject = this.rejectPending;
    if (resolve === undefined || reject === undefined) return undefined;
    this.resolvePending = undefined;
    this.rejectPending = undefined;
    return { resolve, reject };
  }

  private outermostStop(): number {
    for (let index = this.stages.length - 1; index >= 0; index--) {
      if (typeof this.stages[index] === "function") return index;
    }
    return -1;
  }

  /** The stages before `end` see the stream done. */
  private endUpTo(end: number): void {
    for (let index = 0; index < end; index++) {
      if (typeof this.stages[index] === "function") this.endStop(index);
      else this.endObserver(index, { closed: false });
    }
  }

  private endEach(indexes: readonly number[], how: StreamEnd): void {
    // Inner stages first, as their wrappers would have ended.
    for (let at = indexes.length - 1; at >= 0; at--) {
      this.endObserver(indexes[at] as number, how);
    }
  }

  private hasEnded(index: number): boolean {
    return (this.ended & (1 << index)) !== 0;
  }

  private endObserver(index: number, how: StreamEnd): void {
    if (this.hasEnded(index)) return;
    this.ended |= 1 << index;
    (this.stages[index] as StreamHooks<T>).onEnd?.(how);
  }

  private endStop(index: number): void {
    if (this.hasEnded(index)) return;
    this.ended |= 1 << index;
    const disarms = this.disarms;
    const disarm = disarms?.[index];
    if (disarms !== undefined && disarm !== undefined) {
      disarms[index] = undefined;
      disarm();
    }
  }
}
