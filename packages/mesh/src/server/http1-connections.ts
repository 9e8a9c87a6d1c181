import type * as http from "node:http";
import type { Duplex } from "node:stream";

/** The timeouts of an HTTP/1.1 connection between requests. */
export interface Http1Timeouts {
  /** A connection must have sent a whole request's headers within this after it was accepted. */
  headersTimeoutMs: number;
  /** A kept-alive connection may idle this long, then has `headersTimeoutMs` for the next one. */
  keepAliveTimeoutMs: number;
}

/**
 * The HTTP/1.1 connections of a server, with the requests each has in progress.
 *
 * Node enforces `headersTimeout` only on connections of a server that listens itself, and these
 * come from serve()'s sniffer (HTTP/1.1 over TLS is served by the TLS server, which has no such
 * timeout at all): each connection waiting for request headers has a timer of its own here. A
 * kept-alive connection may idle for the keep-alive timeout first (which, reset by every byte,
 * would not stop a trickle), and is then closed without an answer, as that timeout would.
 *
 * One timer per connection, refreshed when a request ends, not one per request: a request's start
 * leaves the timer running, which does nothing when it fires during a request. (A timer, a closure
 * and a `once` listener per request were about 3 % of a Connect JSON call's CPU: bench/README.md.)
 */
export class Http1Connections {
  private readonly open = new Map<Duplex, Http1Connection>();
  private readonly shared: Shared;

  /** `refuse` answers a connection with a status line alone and closes it. */
  constructor(timeouts: Http1Timeouts, refuse: (socket: Duplex, status: string) => void) {
    this.shared = { timeouts, refuse, closing: false };
  }

  /** Tracks `socket`, accepted at `acceptedAt` (ms since the epoch), until it closes. */
  add(socket: Duplex, acceptedAt: number): void {
    const connection = new Http1Connection(socket, this.shared, acceptedAt);
    this.open.set(socket, connection);
    socket.once("close", () => {
      this.open.delete(socket);
      connection.closed();
    });
  }

  /** A request has begun on its connection; `res` is its answer. */
  request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const connection = this.open.get(req.socket);
    if (connection === undefined) return;
    connection.begin(res);
    (res as TrackedResponse)[connectionOf] = connection;
    res.on("close", responseClosed);
  }

  /** The answer being written on `socket`, if its headers have gone out. */
  answerStarted(socket: Duplex): boolean {
    return this.open.get(socket)?.answering?.headersSent === true;
  }

  /** Closes every idle connection now, and each busy one once its requests have been answered. */
  closeIdle(): void {
    this.shared.closing = true;
    for (const [socket, connection] of this.open) if (connection.active === 0) socket.destroy();
  }
}

/** What every connection of a server reads. */
interface Shared {
  timeouts: Http1Timeouts;
  refuse: (socket: Duplex, status: string) => void;
  /** The server is closing: a connection closes once its requests have been answered. */
  closing: boolean;
}

const connectionOf = Symbol("http1 connection");
type TrackedResponse = http.ServerResponse & { [connectionOf]?: Http1Connection };

// The same listener for every response, with the response as `this`.
function responseClosed(this: TrackedResponse): void {
  this[connectionOf]?.end(this);
}

/** One HTTP/1.1 connection: its requests in progress, the answer being written, its timer. */
class Http1Connection {
  active = 0;
  answering: http.ServerResponse | undefined;
  private served = 0;
  private readonly socket: Duplex;
  private readonly shared: Shared;
  private timer: NodeJS.Timeout;
  /** Whether the timer waits for a request after another (kept alive), not the first one. */
  private keptAlive = false;

  constructor(socket: Duplex, shared: Shared, acceptedAt: number) {
    this.socket = socket;
    this.shared = shared;
    const waited = Date.now() - acceptedAt;
    this.timer = setTimeout(() => this.fired(), shared.timeouts.headersTimeoutMs - waited);
  }

  begin(res: http.ServerResponse): void {
    this.active += 1;
    this.served += 1;
    this.answering = res;
  }

  end(res: http.ServerResponse): void {
    if (this.answering === res) this.answering = undefined;
    this.active -= 1;
    if (this.active > 0) return;
    if (this.shared.closing) this.socket.destroy();
    else if (this.socket.destroyed) return;
    else if (this.keptAlive) this.timer.refresh();
    else {
      clearTimeout(this.timer);
      const { keepAliveTimeoutMs, headersTimeoutMs } = this.shared.timeouts;
      this.timer = setTimeout(() => this.fired(), keepAliveTimeoutMs + headersTimeoutMs);
      this.keptAlive = true;
    }
  }

  closed(): void {
    clearTimeout(this.timer);
  }

  private fired(): void {
    if (this.active > 0) return;
    if (this.served === 0) this.shared.refuse(this.socket, "408 Request Timeout");
    else this.socket.destroy();
  }
}
