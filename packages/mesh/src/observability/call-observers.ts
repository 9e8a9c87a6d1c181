import type { Message } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import {
  type AnyRequest,
  answersWithStream,
  callNext,
  type Next,
  observeStream,
  type StreamEnd,
} from "../protocol/streams.ts";

/** A call as its observers see it. */
export interface ObservedCall {
  readonly req: AnyRequest;
  /** True once its handler has answered with a stream, which is being sent. */
  streaming: boolean;
}

/** Which of a call's streams a message is on. */
export type MessageSide = "request" | "response";

/** How a call ended. */
export interface CallEnd {
  /** What it failed with; undefined when it succeeded. */
  readonly error: unknown;
  /** True for a stream its reader closed before it was done. */
  readonly closed: boolean;
  /** From its start to its end: a unary call's handler answering, a stream's last message. */
  readonly durationMs: number;
  /** A unary call's response message, when it succeeded. */
  readonly response?: unknown;
}

/**
 * Watches the calls a server answers (counts, durations). `S` is what the observer keeps for a
 * call, usually the state of the call's method.
 */
export interface CallObserver<S> {
  /** A call starts; what it returns comes back with the call's other events (null: not watched). */
  start(req: AnyRequest): S | null;
  /**
   * Whether it wants each message of the call's streams (`message` below). Asked once, of calls
   * with a stream only, after `start`: a call no observer asks this of passes its messages on
   * untouched.
   */
  watchesMessages?(state: S): boolean;
  /** A message of the call's request stream or of its response stream passed, in order. */
  message?(state: S, side: MessageSide, message: unknown): void;
  /** Its handler answered with a stream, which is now being sent. */
  streaming?(state: S, call: ObservedCall): void;
  /** It ended: a unary call when its handler answered or failed, a stream when it finished. */
  end(state: S, call: ObservedCall, end: CallEnd): void;
}

/**
 * One interceptor that tells each observer of every call's start and end. A unary call costs one
 * promise reaction for all of them: as interceptors of their own, each observer added a reaction
 * and its closures to every call (about 5 % of a unary call's CPU for the two the runtime has,
 * bench/README.md).
 */
// biome-ignore lint/suspicious/noExplicitAny: observers keep states of their own types
export function observeCalls(observers: readonly CallObserver<any>[]): Interceptor {
  const endAll = (
    states: unknown[],
    call: ObservedCall,
    started: number,
    error: unknown,
    response?: unknown,
  ) => {
    const end: CallEnd = {
      error,
      closed: false,
      durationMs: performance.now() - started,
      response,
    };
    endEach(states, call, end);
  };
  const endEach = (states: unknown[], call: ObservedCall, end: CallEnd) => {
    for (let index = 0; index < observers.length; index++) {
      const state = states[index];
      if (state !== null) observers[index]?.end(state, call, end);
    }
  };
  const observeStreamCall = async (
    next: Next,
    call: ObservedCall,
    states: unknown[],
    started: number,
    watching: number[] | undefined,
  ) => {
    let res: Awaited<ReturnType<Next>>;
    try {
      res = await next(call.req);
    } catch (error) {
      endAll(states, call, started, error);
      throw error;
    }
    if (!res.stream) {
      endAll(states, call, started, undefined);
      return res;
    }
    call.streaming = true;
    for (let index = 0; index < observers.length; index++) {
      const state = states[index];
      if (state !== null) observers[index]?.streaming?.(state, call);
    }
    const observed = observeStream(
      res.message,
      new StreamObservation(endEach, states, call, started),
    );
    return {
      ...res,
      message:
        watching === undefined
          ? observed
          : observeStream<Message>(
              observed,
              new StreamMessages(observers, states, watching, "response"),
            ),
    };
  };
  /** The observers that asked for the messages of this call's streams, by index; or undefined. */
  const watchersOf = (states: unknown[]): number[] | undefined => {
    let watching: number[] | undefined;
    for (let index = 0; index < observers.length; index++) {
      const state = states[index];
      if (state === null || !observers[index]?.watchesMessages?.(state)) continue;
      watching ??= [];
      watching.push(index);
    }
    return watching;
  };
  return (next) => (received) => {
    let req = received;
    const states = observers.map((observer) => observer.start(req));
    const answersStream = answersWithStream(req.method);
    // Asked once, of calls with a stream of either side.
    const watching = req.stream || answersStream ? watchersOf(states) : undefined;
    if (req.stream && watching !== undefined) {
      // Rebuilt, as the Interceptor contract allows: the handler reads the observed stream.
      const messages = new StreamMessages(observers, states, watching, "request");
      req = { ...req, message: observeStream<Message>(req.message, messages) };
    }
    const call: ObservedCall = { req, streaming: false };
    const started = performance.now();
    if (answersStream) return observeStreamCall(next, call, states, started, watching);
    return callNext(next, req).then(
      (res) => {
        endAll(states, call, started, undefined, res.message);
        return res;
      },
      (error: unknown) => {
        endAll(states, call, started, error);
        throw error;
      },
    );
  };
}

/** Shows each message of one of a call's streams to the observers that asked for them. */
class StreamMessages {
  private readonly observers: readonly CallObserver<unknown>[];
  private readonly states: unknown[];
  private readonly watching: number[];
  private readonly side: MessageSide;

  constructor(
    observers: readonly CallObserver<unknown>[],
    states: unknown[],
    watching: number[],
    side: MessageSide,
  ) {
    this.observers = observers;
    this.states = states;
    this.watching = watching;
    this.side = side;
  }

  map<T>(message: T): T {
    for (const index of this.watching) {
      this.observers[index]?.message?.(this.states[index], this.side, message);
    }
    return message;
  }
}

/**
 * Tells a stream's observers of its end. A class: a watch holds it for as long as it is open,
 * where a closure would hold its context too.
 */
class StreamObservation {
  private readonly endEach: (states: unknown[], call: ObservedCall, end: CallEnd) => void;
  private readonly states: unknown[];
  private readonly call: ObservedCall;
  private readonly started: number;

  constructor(
    endEach: (states: unknown[], call: ObservedCall, end: CallEnd) => void,
    states: unknown[],
    call: ObservedCall,
    started: number,
  ) {
    this.endEach = endEach;
    this.states = states;
    this.call = call;
    this.started = started;
  }

  onEnd({ error, closed }: StreamEnd): void {
    this.endEach(this.states, this.call, {
      error,
      closed,
      durationMs: performance.now() - this.started,
    });
  }
}
