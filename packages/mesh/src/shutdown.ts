import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Ends every open stream with `unavailable` when `signal` aborts, so that clients reconnect (to
 * this server once restarted, or to another instance) and resume, while unary calls in flight run
 * to completion. A stream that simply stopped would look complete to its client.
 */
export function createShutdownInterceptor(signal: AbortSignal): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.stream) return res;
    const messages = res.message[Symbol.asyncIterator]();
    const stopped = new Promise<never>((_, reject) => {
      const stop = () =>
        reject(
          new ConnectError(
            "the server is shutting down; reconnect and resume from the last revision received",
            Code.Unavailable,
          ),
        );
      if (signal.aborted) stop();
      else signal.addEventListener("abort", stop, { once: true });
    });
    stopped.catch(() => {});
    return {
      ...res,
      message: (async function* () {
        try {
          for (;;) {
            const result = await Promise.race([messages.next(), stopped]);
            if (result.done) return;
            yield result.value;
          }
        } finally {
          // The handler stops at its next step; it sees its call end through its own signal.
          void messages.return?.();
        }
      })(),
    };
  };
}
