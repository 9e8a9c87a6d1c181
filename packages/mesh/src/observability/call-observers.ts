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
    return {
      ...res,
      message: observeStream(res.message, new StreamObservation(endEach, states, call, started)),
    };
  };
  return (next) => (req) => {
    const states = observers.map((observer) => observer.start(req));
    const call: ObservedCall = { req, streaming: false };
    const started = performance.now();
    if (answersWithStream(req.method)) return observeStreamCall(next, call, states, started);
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
