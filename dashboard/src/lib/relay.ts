// The explorer's relay for client- and bidi-streaming calls, in the dashboard's server: a browser
// cannot send and receive on one fetch at once, so the page opens a relay (its answer streams the
// call's events as lines of JSON) and sends each message, the half-close or the cancel with short
// POSTs naming it. The relay holds the call to the service over gRPC, with the page's token; when
// the page goes away its answer is aborted, and so is the call.
import {
  type DescMethod,
  fromJson,
  type JsonValue,
  type Message,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type DecodedDetail, decodeDetail, registryOf } from "./explorer.ts";
import { describeService } from "./reflection.ts";

/** What the page asks a relay to do with its call. */
export type RelayCommand = { send: JsonValue } | { close: true } | { cancel: true };

/** What a relay streams to the page, one per line. */
export type RelayEvent =
  | { kind: "open"; id: string }
  | { kind: "header"; fields: [string, string][] }
  | { kind: "message"; atMs: number; json: JsonValue }
  | {
      kind: "end";
      atMs: number;
      code: string;
      message: string;
      details: DecodedDetail[];
      trailer: [string, string][];
    };

/** At most this many relays at once in the dashboard's server. */
const maxRelays = 64;
/** Messages the page may send ahead of the service reading them. */
const maxQueued = 100;
const reflectionTimeoutMs = 5_000;

/** One open relay: its call's request messages, and how to end it. */
class Relay {
  private readonly queued: Message[] = [];
  private closed = false;
  private wake: (() => void) | undefined;
  readonly abort = new AbortController();
  readonly method: DescMethod;
  readonly registry: Registry;

  constructor(method: DescMethod, registry: Registry) {
    this.method = method;
    this.registry = registry;
  }

  command(command: RelayCommand): void {
    if ("cancel" in command) {
      this.abort.abort(new ConnectError("cancelled from the page", Code.Canceled));
      return;
    }
    if (this.closed)
      throw new ConnectError("the request stream is closed", Code.FailedPrecondition);
    if ("close" in command) this.closed = true;
    else {
      if (this.queued.length >= maxQueued) {
        throw new ConnectError(
          `${maxQueued} messages wait for the service already`,
          Code.ResourceExhausted,
        );
      }
      this.queued.push(fromJson(this.method.input, command.send, { registry: this.registry }));
    }
    this.wake?.();
  }

  /**
   * The request messages as the page sends them, until it half-closes. A cancelled call's requests
   * do not end (that would be a half-close): the call's signal resets its stream instead.
   */
  async *requests(): AsyncGenerator<Message> {
    for (;;) {
      const next = this.queued.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }
}

// Kept on globalThis: Next.js may bundle each route with its own copy of this module.
const relaysKey = Symbol.for("shop-dashboard.relays");
const shared = globalThis as { [relaysKey]?: Map<string, Relay> };
shared[relaysKey] ??= new Map<string, Relay>();
const relays: Map<string, Relay> = shared[relaysKey];

/** Sends `command` to the relay `id`; false when there is no such relay. */
export function commandRelay(id: string, command: RelayCommand): boolean {
  const relay = relays.get(id);
  if (!relay) return false;
  relay.command(command);
  return true;
}

/**
 * Opens a relay for `methodName` ("package.Service/Method") of the service at `url`, and returns
 * its events: "open" with its id first, the header, each answer, and "end" with the status.
 * `signal` is the page's request: when it aborts, the call is cancelled.
 */
export async function openRelay(options: {
  url: string;
  methodName: string;
  authorization: string | undefined;
  headers: Record<string, string>;
  timeoutMs: number | undefined;
  signal: AbortSignal;
}): Promise<ReadableStream<Uint8Array>> {
  if (relays.size >= maxRelays) {
    throw new ConnectError(`${maxRelays} relays are open already`, Code.ResourceExhausted);
  }
  const described = await describeService(options.url, {
    authorization: options.authorization,
    timeoutMs: reflectionTimeoutMs,
  });
  const registry = registryOf(described.files);
  const [serviceName, name] = options.methodName.split("/");
  const method = registry.getService(serviceName ?? "")?.methods.find((m) => m.name === name);
  if (!method) {
    throw new ConnectError(`${options.url} serves no ${options.methodName}`, Code.NotFound);
  }
  if (method.methodKind !== "client_streaming" && method.methodKind !== "bidi_streaming") {
    throw new ConnectError(
      `${options.methodName} is ${method.methodKind.replace("_", " ")}: call it from the page`,
      Code.InvalidArgument,
    );
  }
  const id = crypto.randomUUID();
  const relay = new Relay(method, registry);
  relays.set(id, relay);
  const pageGone = () => relay.abort.abort(new ConnectError("the page went away", Code.Canceled));
  options.signal.addEventListener("abort", pageGone);
  const encoder = new TextEncoder();
  const startedAt = performance.now();
  const since = () => Math.round(performance.now() - startedAt);
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const emit = (event: RelayEvent) => {
        if (!relay.abort.signal.aborted || event.kind === "end") {
          controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`));
        }
      };
      emit({ kind: "open", id });
      let trailer: [string, string][] = [];
      const callOptions = {
        signal: relay.abort.signal,
        headers: {
          ...options.headers,
          ...(options.authorization ? { authorization: options.authorization } : {}),
        },
        timeoutMs: options.timeoutMs,
        onHeader: (headers: Headers) => emit({ kind: "header", fields: [...headers.entries()] }),
        onTrailer: (headers: Headers) => {
          trailer = [...headers.entries()];
        },
      };
      const answer = (message: Message) =>
        emit({
          kind: "message",
          atMs: since(),
          json: toJson(method.output, message, { registry }),
        });
      try {
        const client = createClient(
          method.parent,
          createGrpcTransport({ baseUrl: options.url, jsonOptions: { registry } }),
          // biome-ignore lint/suspicious/noExplicitAny: a client of a service known only at runtime
        ) as Record<string, any>;
        const invoke = client[method.localName];
        if (method.methodKind === "client_streaming") {
          answer(await invoke(relay.requests(), callOptions));
        } else {
          for await (const message of invoke(relay.requests(), callOptions)) answer(message);
        }
        emit({ kind: "end", atMs: since(), code: "ok", message: "", details: [], trailer });
      } catch (error) {
        const failure = ConnectError.from(error);
        emit({
          kind: "end",
          atMs: since(),
          code: codeToString(failure.code),
          message: failure.rawMessage,
          details: failure.details.map((detail) => decodeDetail(detail, registry)),
          trailer,
        });
      } finally {
        relays.delete(id);
        options.signal.removeEventListener("abort", pageGone);
        try {
          controller.close();
        } catch {
          // The page is gone: nothing to close.
        }
      }
    },
    cancel() {
      pageGone();
    },
  });
}

/** An error as JSON, with the HTTP status of its code. */
export function refuse(code: Code, message: string): Response {
  return Response.json(
    { code: codeToString(code), error: message },
    { status: codeToHttpStatus(code), headers: { "cache-control": "no-store" } },
  );
}
