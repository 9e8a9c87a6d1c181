import type { Http2Session } from "node:http2";

/** The HTTP/2 sessions of a server, watched for idleness. */
export interface IdleSessions {
  /** Watches `session` from now on, until it closes. */
  add(session: Http2Session): void;
  /** Stops watching every session. */
  stop(): void;
}

/**
 * Closes (GOAWAY, then close once its streams are done) each HTTP/2 session that has neither
 * received nor sent a byte for `idleTimeoutMs`. One timer per server compares every session's
 * byte counts from one sweep to the next, so that a session closes between `idleTimeoutMs` and
 * `idleTimeoutMs` plus a sweep (a tenth of it, at most a second) after its last byte. Node's own
 * `session.setTimeout` does the same by refreshing a timer on every frame of every stream, which
 * was about 3 % of the CPU of a unary call (bench/README.md), hence this.
 */
export function watchIdleSessions(idleTimeoutMs: number): IdleSessions {
  const sweepMs = Math.max(10, Math.min(1_000, Math.floor(idleTimeoutMs / 10)));
  // The byte count each session had when it was last seen to change, and when that was.
  const sessions = new Map<Http2Session, { bytes: number; since: number }>();
  let timer: NodeJS.Timeout | undefined;

  const bytesOf = (session: Http2Session) => {
    const socket = session.socket;
    return socket.bytesRead + socket.bytesWritten;
  };
  const sweep = () => {
    const now = Date.now();
    for (const [session, seen] of sessions) {
      if (session.closed || session.destroyed) continue;
      const bytes = bytesOf(session);
      if (bytes !== seen.bytes) {
        seen.bytes = bytes;
        seen.since = now;
      } else if (now - seen.since >= idleTimeoutMs) {
        session.close();
      }
    }
  };

  return {
    add(session) {
      sessions.set(session, { bytes: bytesOf(session), since: Date.now() });
      session.once("close", () => {
        sessions.delete(session);
        if (sessions.size === 0) {
          clearInterval(timer);
          timer = undefined;
        }
      });
      if (timer === undefined) {
        timer = setInterval(sweep, sweepMs);
        timer.unref();
      }
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      sessions.clear();
    },
  };
}
