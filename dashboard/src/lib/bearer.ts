import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { SessionStore } from "./session.ts";

/**
 * Sends the session's token with every call (`authorization: Bearer …`), and tells the session
 * when the services refuse it (`unauthenticated`, also when a stream ends that way because its
 * token expired), so that the next call, or the stream's reconnect, carries a new one.
 */
export function createBearerInterceptor(
  session: Pick<SessionStore, "token" | "refused">,
): Interceptor {
  return (next) => async (req) => {
    const token = await session.token();
    if (token === undefined) return next(req);
    req.header.set("authorization", `Bearer ${token}`);
    const refused = (error: unknown) => {
      if (ConnectError.from(error).code === Code.Unauthenticated) session.refused(token);
    };
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: watchRefusal(res.message, refused) };
    } catch (error) {
      refused(error);
      throw error;
    }
  };
}

async function* watchRefusal<T>(
  messages: AsyncIterable<T>,
  refused: (error: unknown) => void,
): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    refused(error);
    throw error;
  }
}
