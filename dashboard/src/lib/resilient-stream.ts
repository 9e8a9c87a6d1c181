import { Code, ConnectError } from "@connectrpc/connect";
import { type BackoffPolicy, backoffDelay, defaultBackoff } from "./backoff.ts";
import { describeError, type ErrorDescription } from "./errors.ts";

/**
 * Where a stream is: opening for the first time, receiving, reconnecting after a drop, or offline
 * once reconnecting has failed several times in a row (it keeps trying, less often).
 */
export type StreamStatus = "connecting" | "live" | "reconnecting" | "offline";

/** What the page shows about one stream. */
export interface StreamState {
  status: StreamStatus;
  /** Why the last connection ended, while not live. */
  error: ErrorDescription | undefined;
  /** When the next attempt starts (epoch milliseconds), while reconnecting or offline. */
  retryAt: number | undefined;
}

/** The state of a stream that has not yet been opened. */
export const connectingState: StreamState = {
  status: "connecting",
  error: undefined,
  retryAt: undefined,
};

/** How to run one resilient stream. */
export interface ResilientStreamOptions {
  /**
   * Opens one connection and consumes it until it ends or fails, calling `received` for every
   * response. Ending without an error counts as a drop too: the streams used here never finish.
   */
  connect(signal: AbortSignal, received: () => void): Promise<void>;
  /** Called on every change of state. */
  onState(state: StreamState): void;
  /**
   * A connection that delivers nothing for this long is treated as dead and replaced: the services
   * send a heartbeat at least every 5 s, so silence means a half-open connection.
   */
  idleTimeoutMs?: number;
  /** Failed attempts in a row after which the stream is shown as offline. */
  offlineAfter?: number;
  backoff?: BackoffPolicy;
}

/** Controls a running resilient stream. */
export interface ResilientStream {
  /** Closes the stream for good. */
  stop(): void;
  /** Skips the current wait and reconnects at once (when the browser comes back online, say). */
  retryNow(): void;
}

/**
 * Keeps a stream open for as long as it is wanted: when a connection fails, ends or goes silent,
 * waits with exponential backoff and connects again, until `stop()`. A live stream whose token
 * expired reconnects at once, without showing a drop.
 */
export function startResilientStream(options: ResilientStreamOptions): ResilientStream {
  const stopped = new AbortController();
  let wake: (() => void) | undefined;
  void run(options, stopped.signal, (resolve) => {
    wake = resolve;
  });
  return {
    stop: () => stopped.abort(),
    retryNow: () => wake?.(),
  };
}

async function run(
  options: ResilientStreamOptions,
  stopped: AbortSignal,
  setWake: (wake: (() => void) | undefined) => void,
): Promise<void> {
  const idleTimeoutMs = options.idleTimeoutMs ?? 15_000;
  const offlineAfter = options.offlineAfter ?? 3;
  let failures = 0;
  while (!stopped.aborted) {
    const connection = new AbortController();
    const abort = () => connection.abort();
    stopped.addEventListener("abort", abort);
    let silent = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        connection.abort();
      }, idleTimeoutMs);
    };
    let live = false;
    const received = () => {
      arm();
      if (live) return;
      live = true;
      failures = 0;
      options.onState({ status: "live", error: undefined, retryAt: undefined });
    };
    let error: unknown;
    arm();
    try {
      await options.connect(connection.signal, received);
      error = new ConnectError("the stream ended", Code.Unavailable);
    } catch (cause) {
      error = silent
        ? new ConnectError(`nothing received for ${idleTimeoutMs / 1000} s`, Code.DeadlineExceeded)
        : cause;
    } finally {
      clearTimeout(watchdog);
      stopped.removeEventListener("abort", abort);
    }
    if (stopped.aborted) return;
    // A stream that was live and ended with unauthenticated outlived its token (the services end a
    // stream when the token that opened it expires): connect again at once, resuming where it
    // was, with a fresh token. One that fails so before delivering anything waits as any other.
    if (live && ConnectError.from(error).code === Code.Unauthenticated) continue;
    const delay = backoffDelay(failures, options.backoff ?? defaultBackoff);
    failures++;
    options.onState({
      status: failures >= offlineAfter ? "offline" : "reconnecting",
      error: describeError(error),
      retryAt: Date.now() + delay,
    });
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopped.removeEventListener("abort", done);
        setWake(undefined);
        resolve();
      };
      const timer = setTimeout(done, delay);
      stopped.addEventListener("abort", done);
      setWake(done);
    });
  }
}
