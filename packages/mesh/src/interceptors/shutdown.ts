import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type AnyRequest, type Next, onStreamsOnly, stopStreamOn } from "../protocol/streams.ts";

/**
 * Ends every open stream with `unavailable` when `signal` aborts, so that clients reconnect (to
 * this server once restarted, or to another instance) and resume, while unary calls in flight run
 * to completion. A stream that simply stopped would look complete to its client.
 */
export function createShutdownInterceptor(signal: AbortSignal): Interceptor {
  // The streams open now, each by the stop of its stage: one listener on the server-wide signal
  // for all of them, rather than one per stream.
  const open = new Set<(error: unknown) => void>();
  const shuttingDown = () =>
    new ConnectError(
      "the server is shutting down; reconnect and resume from the last revision received",
      Code.Unavailable,
    );
  signal.addEventListener(
    "abort",
    () => {
      for (const stop of [...open]) stop(shuttingDown());
      open.clear();
    },
    { once: true },
  );
  // The stream leaves nothing behind once it ends, however long it lived and however it ended.
  const arm = (stop: (error: unknown) => void) => {
    if (signal.aborted) {
      stop(shuttingDown());
      return ignore;
    }
    open.add(stop);
    return () => {
      open.delete(stop);
    };
  };
  return onStreamsOnly(async function endOnShutdown(next: Next, req: AnyRequest) {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: stopStreamOn(res.message, arm) };
  });
}

function ignore(): void {}
