import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type AnyRequest, type Next, onStreamsOnly, stopStreamOn } from "../protocol/streams.ts";

/**
 * Ends every open stream with `unavailable` when `signal` aborts, so that clients reconnect (to
 * this server once restarted, or to another instance) and resume, while unary calls in flight run
 * to completion. A stream that simply stopped would look complete to its client.
 */
export function createShutdownInterceptor(signal: AbortSignal): Interceptor {
  return onStreamsOnly(endOnShutdown);

  async function endOnShutdown(next: Next, req: AnyRequest) {
    const res = await next(req);
    if (!res.stream) return res;
    return {
      ...res,
      // The stream listens on the server-wide signal while it is open and leaves nothing behind
      // on it once it ends, however long it lived and however it ended.
      message: stopStreamOn(res.message, (stop) => {
        const onShutdown = () =>
          stop(
            new ConnectError(
              "the server is shutting down; reconnect and resume from the last revision received",
              Code.Unavailable,
            ),
          );
        if (signal.aborted) {
          onShutdown();
          return () => {};
        }
        signal.addEventListener("abort", onShutdown, { once: true });
        return () => signal.removeEventListener("abort", onShutdown);
      }),
    };
  }
}
