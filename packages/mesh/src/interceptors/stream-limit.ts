import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { type AnyRequest, type Next, observeStream, onStreamsOnly } from "../protocol/streams.ts";
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
  return onStreamsOnly(limited);

  async function limited(next: Next, req: AnyRequest) {
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
    // Released however the stream ends, also when it is closed before its first message.
    return { ...res, message: observeStream(res.message, new ReleaseOnEnd(release, client)) };
  }
}

/** Releases a client's slot when its stream ends (a class: a watch holds it while open). */
class ReleaseOnEnd {
  private readonly release: (client: string) => void;
  private readonly client: string;

  constructor(release: (client: string) => void, client: string) {
    this.release = release;
    this.client = client;
  }

  onEnd(): void {
    this.release(this.client);
  }
}
