import {
  connectingState,
  type ResilientStream,
  type ResilientStreamOptions,
  type StreamState,
  startResilientStream,
} from "./resilient-stream.ts";

/** What the page renders of a live value: the latest message of a stream, and the stream's state. */
export interface ValueView<T> extends StreamState {
  value: T | undefined;
}

/** The latest message of a resilient stream, in the shape `useSyncExternalStore` wants. */
export interface LiveValue<T> {
  subscribe(listener: () => void): () => void;
  getSnapshot(): ValueView<T>;
  start(): void;
  stop(): void;
  retryNow(): void;
}

/**
 * Keeps the latest message of `open`'s stream, reopening it with backoff when it drops. The value is
 * kept while reconnecting, so the page can show it greyed out instead of blank.
 */
export function createLiveValue<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  options: Pick<ResilientStreamOptions, "idleTimeoutMs" | "offlineAfter" | "backoff"> = {},
): LiveValue<T> {
  const listeners = new Set<() => void>();
  let view: ValueView<T> = { ...connectingState, value: undefined };
  let stream: ResilientStream | undefined;
  const update = (next: Partial<ValueView<T>>) => {
    view = { ...view, ...next };
    for (const listener of listeners) listener();
  };
  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => view,
    start() {
      if (stream) return;
      update(connectingState);
      stream = startResilientStream({
        ...options,
        async connect(signal, received) {
          for await (const message of open(signal)) {
            received();
            update({ value: message });
          }
        },
        onState: update,
      });
    },
    stop() {
      stream?.stop();
      stream = undefined;
    },
    retryNow: () => stream?.retryNow(),
  };
}
