import { create, type DescMethod, type Message, type Registry } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { trace } from "@opentelemetry/api";
import {
  type TapEvent,
  TapEventSchema,
  type TapRequest,
  TapService,
} from "@shop/api/shop/mesh/v1/tap_service_pb";
import { convertOnce } from "../change-feed/convert-once.ts";
import { callerKey } from "../interceptors/auth.ts";
import { peerKey } from "../interceptors/stream-limit.ts";
import { sentUncompressed, wireFactsOf } from "../protocol/serving-path.ts";
import { type AnyRequest, answersWithStream } from "../protocol/streams.ts";
import type { CallObserver } from "./call-observers.ts";
import { toRedactedJson } from "./redact.ts";
import { callerGroupOf } from "./stats.ts";

/** Calls a tap keeps for a reader that has not taken them; past that it drops and counts. */
const queueLimit = 1_000;
/** Calls in one response at most. */
const batchLimit = 100;
/** Messages of each of a call's streams whose JSON a tap keeps (it counts the rest). */
const streamMessagesKept = 10;
/** An empty response after this long without calls: a quiet tap is told from a dead connection. */
const heartbeatMs = 5_000;

/** The live traffic of one server, for `shop.mesh.v1.TapService/Tap`. */
export interface Tap {
  /** Sees every call this server answers (see observeCalls); costs one check while no tap is open. */
  observer: CallObserver<unknown>;
  /** Adds `shop.mesh.v1.TapService` to `router`. */
  register(router: ConnectRouter, options: { server: string; shutdownSignal: AbortSignal }): void;
}

/** What the observer keeps of a call while it runs, when some tap is open. */
interface TappedCall {
  req: AnyRequest;
  trace: string;
  /**
   * A call with a stream, while a tap with payloads is open: the first messages of its streams
   * as redacted JSON, written as they pass (a message may change once it has been sent on), and
   * how many passed.
   */
  streamed?: StreamedMessages;
}

interface StreamedMessages {
  requests: string[];
  responses: string[];
  requestCount: number;
  responseCount: number;
}

/** A call as it ended: what the filters look at, and what its event is made of. */
interface EndedCall {
  call: TappedCall;
  /** Its full method name, "shop.user.v1.UserService/CreateUser". */
  method: string;
  code: string;
  failure: ConnectError | undefined;
  durationMs: number;
  /** The caller as the statistics count callers: a service's name, or "outside". */
  source: string;
  /** The token's subject, or the peer's address without authentication. */
  caller: string;
  endedAt: number;
  response: unknown;
}

/** "shop.user.v1.UserService/CreateUser" for that method; made once per method. */
const fullNameOf = convertOnce((method: DescMethod) => `${method.parent.typeName}/${method.name}`);

/** A call's messages as a tap shows them, and how many there were on each side. */
interface Payloads {
  requests: string[];
  responses: string[];
  requestMessages: bigint;
  responseMessages: bigint;
}

/**
 * Creates the tap of one server: every call it completes goes to each open tap whose filters it
 * passes, as it ends. A tap never holds a call up: publishing puts the call in each reader's queue
 * (at most `queueLimit`, past which it counts what it drops) and returns; each reader's stream
 * takes from its queue at its own pace. With no tap open a call costs the observer one check.
 */
export function createTap(registry: Registry): Tap {
  const readers = new Set<Reader>();
  let server = "";

  const payloadsWanted = () => {
    for (const reader of readers) if (reader.payloads) return true;
    return false;
  };

  // Calls that ended since the last turn of the event loop, and whether a turn will publish them:
  // one callback for all of them, not one per call.
  let ended: EndedCall[] = [];
  let flushing = false;
  const flush = () => {
    const calls = ended;
    ended = [];
    flushing = false;
    for (const done of calls) publish(done);
  };

  /** Builds the call's event (its bytes are counted by now) and gives it to every reader it suits. */
  const publish = (done: EndedCall) => {
    const { call, failure } = done;
    const wire = wireFactsOf(call.req);
    const event = create(TapEventSchema, {
      time: timestampFromMs(done.endedAt),
      server,
      method: done.method,
      protocol: wire?.protocol ?? "",
      codec: wire?.codec ?? "",
      httpVersion: wire?.httpVersion ?? "",
      caller: done.caller,
      code: done.code,
      message: failure?.rawMessage ?? "",
      durationMs: done.durationMs,
      requestBytes: BigInt(wire?.requestBytes ?? 0),
      responseBytes: BigInt(wire?.responseBytes ?? 0),
      traceId: call.trace,
    });
    let payloads: Payloads | undefined;
    for (const reader of readers) {
      if (!reader.wants(done)) continue;
      // A reader with a full queue drops the call: its messages are not written for nothing.
      if (reader.payloads && !reader.full) {
        payloads ??= payloadsOf(call, done.response, registry);
        reader.push({ ...event, ...payloads });
      } else {
        reader.push(event);
      }
    }
  };

  const observer: CallObserver<TappedCall> = {
    start(req) {
      if (readers.size === 0) return null;
      // The tap's own streams would tap themselves.
      if (req.method.parent.typeName === TapService.typeName) return null;
      const span = trace.getActiveSpan()?.spanContext();
      const call: TappedCall = {
        req,
        trace: span && trace.isSpanContextValid(span) ? span.traceId : "",
      };
      if ((req.stream || answersWithStream(req.method)) && payloadsWanted()) {
        call.streamed = { requests: [], responses: [], requestCount: 0, responseCount: 0 };
      }
      return call;
    },
    watchesMessages(call) {
      return call.streamed !== undefined;
    },
    message(call, side, message) {
      const streamed = call.streamed;
      if (streamed === undefined) return;
      const kept = side === "request" ? streamed.requests : streamed.responses;
      if (side === "request") streamed.requestCount++;
      else streamed.responseCount++;
      if (kept.length < streamMessagesKept) {
        kept.push(
          asJson(call.req.method, side === "request" ? "input" : "output", message, registry),
        );
      }
    },
    end(call, _observed, { error, durationMs, response }) {
      if (readers.size === 0) return;
      const { req } = call;
      const failure = error === undefined ? undefined : ConnectError.from(error);
      const identity = req.contextValues.get(callerKey);
      const done: EndedCall = {
        call,
        method: fullNameOf(req.method),
        code: failure === undefined ? "ok" : codeToString(failure.code),
        failure,
        durationMs,
        source: callerGroupOf(identity),
        caller: identity?.subject ?? req.contextValues.get(peerKey),
        endedAt: Date.now(),
        response,
      };
      // A call no tap's filters let through costs no more.
      let wanted = false;
      for (const reader of readers) wanted ||= reader.wants(done);
      if (!wanted) return;
      ended.push(done);
      // The answer's bytes are counted as they are written, after the observers hear of its end.
      if (!flushing) {
        flushing = true;
        setImmediate(flush);
      }
    },
  };

  return {
    observer,
    register(router, options) {
      server = options.server;
      router.service(TapService, {
        async *tap(req, context) {
          const stop = AbortSignal.any([context.signal, options.shutdownSignal]);
          const reader = new Reader(req);
          readers.add(reader);
          try {
            // At once, so that the reader knows the tap is open before any call comes.
            yield { events: [], dropped: 0n };
            while (!stop.aborted) {
              await reader.waitForEvents(stop, heartbeatMs);
              if (stop.aborted) break;
              // Compressing a batch would cost the tapped process more than the calls it reports.
              yield sentUncompressed(reader.take());
            }
          } finally {
            readers.delete(reader);
          }
        },
      });
    },
  };
}

/** One open tap: its filters and the calls its reader has not taken yet. */
class Reader {
  readonly payloads: boolean;
  /** "shop.user.v1.UserService/" for a service filter; "" for none. */
  private readonly servicePrefix: string;
  private readonly method: string;
  /** "/CreateUser" for a method filter by its name alone. */
  private readonly methodSuffix: string;
  private readonly codes: ReadonlySet<string>;
  private readonly slowerThanMs: number;
  private readonly caller: string;
  private queue: TapEvent[] = [];
  private dropped = 0n;
  private wake: (() => void) | undefined;

  constructor(req: TapRequest) {
    this.payloads = req.payloads;
    this.servicePrefix = req.service === "" ? "" : `${req.service}/`;
    this.method = req.method;
    this.methodSuffix = `/${req.method}`;
    this.codes = new Set(req.codes);
    this.slowerThanMs = req.slowerThanMs;
    this.caller = req.caller;
  }

  /** Whether its filters let the call through. */
  wants(event: EndedCall): boolean {
    if (this.caller !== "" && event.source !== this.caller) return false;
    if (this.servicePrefix !== "" && !event.method.startsWith(this.servicePrefix)) return false;
    if (
      this.method !== "" &&
      event.method !== this.method &&
      !event.method.endsWith(this.methodSuffix)
    ) {
      return false;
    }
    if (this.codes.size > 0 && !this.codes.has(event.code)) return false;
    return event.durationMs > this.slowerThanMs || this.slowerThanMs === 0;
  }

  /** Whether the next call would be dropped: the reader has not taken the ones it has. */
  get full(): boolean {
    return this.queue.length >= queueLimit;
  }

  push(event: TapEvent): void {
    if (this.full) this.dropped++;
    else this.queue.push(event);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves once there is something to take, `stop` aborts, or `timeoutMs` passed. */
  waitForEvents(stop: AbortSignal, timeoutMs: number): Promise<void> {
    if (this.queue.length > 0 || this.dropped > 0n || stop.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stop.removeEventListener("abort", done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.wake = done;
      stop.addEventListener("abort", done, { once: true });
    });
  }

  take(): { events: TapEvent[]; dropped: bigint } {
    const events = this.queue.splice(0, batchLimit);
    const dropped = this.dropped;
    this.dropped = 0n;
    return { events, dropped };
  }
}

/**
 * A call's request and response messages as redacted JSON text, and how many there were: a
 * single message is written now, a stream's first ones were written as they passed.
 */
function payloadsOf(call: TappedCall, response: unknown, registry: Registry): Payloads {
  const { req, streamed } = call;
  const payloads: Payloads = {
    requests: [],
    responses: [],
    requestMessages: 0n,
    responseMessages: 0n,
  };
  if (req.stream) {
    payloads.requests = streamed?.requests ?? [];
    payloads.requestMessages = BigInt(streamed?.requestCount ?? 0);
  } else {
    payloads.requests.push(asJson(req.method, "input", req.message, registry));
    payloads.requestMessages = 1n;
  }
  if (answersWithStream(req.method)) {
    payloads.responses = streamed?.responses ?? [];
    payloads.responseMessages = BigInt(streamed?.responseCount ?? 0);
  } else if (response !== undefined) {
    payloads.responses.push(asJson(req.method, "output", response, registry));
    payloads.responseMessages = 1n;
  }
  return payloads;
}

/** A message as JSON text, redacted; one that does not convert says so instead. */
function asJson(
  method: DescMethod,
  side: "input" | "output",
  message: unknown,
  registry: Registry,
): string {
  try {
    return JSON.stringify(toRedactedJson(method[side], message as Message, registry));
  } catch {
    return JSON.stringify("[the tap could not convert this message]");
  }
}
