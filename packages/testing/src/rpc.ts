import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

/** One of the protocols every service port speaks, and how a client reaches a server with it. */
export interface Protocol {
  name: "connect" | "grpc" | "grpc-web";
  transport(baseUrl: string): Transport;
}

/**
 * The three protocols as independent clients use them: Connect (JSON over HTTP/1.1, as browsers and
 * curl), gRPC (HTTP/2 cleartext, as grpc-go or grpcurl) and gRPC-web (binary over HTTP/1.1).
 */
export const protocols: readonly Protocol[] = [
  {
    name: "connect",
    transport: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  },
  { name: "grpc", transport: (baseUrl) => createGrpcTransport({ baseUrl }) },
  {
    name: "grpc-web",
    transport: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  },
];

/** Awaits `call`, which must fail with `code`, and returns the ConnectError for further checks. */
export async function expectCode(call: Promise<unknown>, code: Code): Promise<ConnectError> {
  let outcome: unknown;
  try {
    outcome = await call;
  } catch (error) {
    if (!(error instanceof ConnectError)) {
      throw new Error(`expected a ConnectError with code ${Code[code]}, got ${String(error)}`, {
        cause: error,
      });
    }
    if (error.code !== code) {
      throw new Error(`expected code ${Code[code]}, got ${Code[error.code]}: ${error.rawMessage}`, {
        cause: error,
      });
    }
    return error;
  }
  throw new Error(`expected code ${Code[code]}, but the call succeeded with ${String(outcome)}`);
}

/** A stream being read in the background: what arrived so far, and how it ended. */
export interface StreamRecording<T> {
  /** Every message received, in order. */
  messages: T[];
  /** Resolves when the stream ends, normally or with an error (then in `error`). */
  ended: Promise<void>;
  /** True once the stream has ended. */
  done: boolean;
  /** The error the stream ended with, if it has. */
  error: unknown;
}

/**
 * Reads `stream` in the background, keeping every message, so that a test can poll what arrived
 * (with `waitFor`) instead of blocking on a read that may never complete.
 */
export function recordStream<T>(stream: AsyncIterable<T>): StreamRecording<T> {
  const recording: StreamRecording<T> = {
    messages: [],
    ended: Promise.resolve(),
    done: false,
    error: undefined,
  };
  recording.ended = (async () => {
    try {
      for await (const message of stream) recording.messages.push(message);
    } catch (error) {
      recording.error = error;
    } finally {
      recording.done = true;
    }
  })();
  return recording;
}

/** The request side of a client- or bidi-streaming call, written by the test as it goes. */
export interface RequestStream<T> extends AsyncIterable<T> {
  /** Sends one message. */
  push(message: T): void;
  /** Half-closes the stream: the server sees the end of its requests. */
  close(): void;
}

/** Creates a request stream that yields what `push` was given, in order, until `close`. */
export function createRequestStream<T>(): RequestStream<T> {
  const queued: T[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  return {
    push(message) {
      if (closed) throw new Error("the request stream is closed");
      queued.push(message);
      notify();
    },
    close() {
      closed = true;
      notify();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queued.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (closed) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}
