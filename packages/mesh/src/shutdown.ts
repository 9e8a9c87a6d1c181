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
    // Each wait listens for the shutdown only while it is pending, so that a stream leaves nothing
    // behind on the server-wide signal, however long it lives and however it ends.
    const nextOrShutdown = () =>
      new Promise<IteratorResult<typeof res.message extends AsyncIterable<infer T> ? T : never>>(
        (resolve, reject) => {
          const stop = () =>
            reject(
              new ConnectError(
                "the server is shutting down; reconnect and resume from the last revision received",
                Code.Unavailable,
              ),
            );
          if (signal.aborted) return stop();
          signal.addEventListener("abort", stop, { once: true });
          messages.next().then(
            (result) => {
              signal.removeEventListener("abort", stop);
              resolve(result);
            },
            (error: unknown) => {
              signal.removeEventListener("abort", stop);
              reject(error);
            },
          );
        },
      );
    return {
      ...res,
      message: (async function* () {
        try {
          for (;;) {
            const result = await nextOrShutdown();
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
