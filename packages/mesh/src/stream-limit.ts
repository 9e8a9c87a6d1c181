import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { callerKey } from "./auth.ts";

/** The address a call came from, set by the server for every request. */
export const peerKey = createContextKey<string>("unknown", { description: "the peer address" });

/**
 * Caps the streams (watches, tracking, health and stats watches) one client holds open at once:
 * one more is refused with `resource_exhausted`. A client is the verified caller when
 * authentication is on, its address otherwise. Unary and client-streaming calls are not counted.
 */
export function createStreamLimitInterceptor(maxPerClient: number): Interceptor {
  const open = new Map<string, number>();
  const release = (client: string) => {
    const left = (open.get(client) ?? 1) - 1;
    if (left > 0) open.set(client, left);
    else open.delete(client);
  };
  return (next) => async (req) => {
    const kind = req.method.methodKind;
    if (kind !== "server_streaming" && kind !== "bidi_streaming") return next(req);
    const caller = req.contextValues.get(callerKey);
    const client = caller ? `caller:${caller.subject}` : `peer:${req.contextValues.get(peerKey)}`;
    const count = open.get(client) ?? 0;
    if (count >= maxPerClient) {
      throw new ConnectError(
        `too many open streams: at most ${maxPerClient} per client; close one to open another`,
        Code.ResourceExhausted,
      );
    }
    open.set(client, count + 1);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (error) {
      release(client);
      throw error;
    }
    if (!res.stream) {
      release(client);
      return res;
    }
    return { ...res, message: onEnd(res.message, () => release(client)) };
  };
}

/**
 * Calls `end` once when the stream is done, fails, or is closed, even before its first message
 * (a generator's `finally` would not run when it is closed before it started).
 */
function onEnd<T>(messages: AsyncIterable<T>, end: () => void): AsyncIterable<T> {
  let ended = false;
  const endOnce = () => {
    if (ended) return;
    ended = true;
    end();
  };
  return {
    [Symbol.asyncIterator]() {
      const iterator = messages[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const result = await iterator.next();
            if (result.done) endOnce();
            return result;
          } catch (error) {
            endOnce();
            throw error;
          }
        },
        async return(value?: unknown) {
          endOnce();
          return (await iterator.return?.(value)) ?? { done: true, value: undefined };
        },
      };
    },
  };
}
