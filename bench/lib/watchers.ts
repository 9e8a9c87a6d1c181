// Many WatchUsers streams from one lean client: raw node:http2 sessions, each stream's gRPC (or
// Connect streaming) frames cut out as they arrive and stamped with their arrival time; decoding happens after the run, so
// that the client adds as little as possible to the delivery times it measures.
import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  WatchUsersRequestSchema,
  type WatchUsersResponse,
  WatchUsersResponseSchema,
} from "@shop/api/shop/user/v1/user_service_pb";
import { grpcFrame, userServicePath } from "./requests.ts";

/** A WatchUsersResponse carrying no events (a heartbeat) is a few bytes; any event makes it >60. */
const heartbeatMaxBytes = 32;

/** The protocol of the watch streams: both envelope messages alike. */
export type WatchProtocol = "grpc" | "connect";

/** Connect's end-stream message: the last frame, with the status, flagged so. */
const connectEndStreamFlag = 0b10;

/** One watch stream as the client saw it. */
export interface Watcher {
  /** Every message, with performance.now() when its last byte arrived (unless `onMessage`). */
  arrivals: { at: number; bytes: Uint8Array }[];
  /** Messages received. */
  messages: number;
  /** Messages that carried events. */
  eventMessages: number;
  /** Why the stream ended, when it did. */
  ended: string | undefined;
}

/** Open watch streams and how to close them. */
export interface WatcherPool {
  watchers: Watcher[];
  /** Resolves once every stream has received its first response. */
  allStarted(timeoutMs: number): Promise<void>;
  /** Resolves once every stream has received `count` messages with events. */
  allReceived(count: number, timeoutMs: number): Promise<void>;
  /** Cancels every stream and closes the connections. */
  close(): Promise<void>;
}

function waitUntil(condition: () => boolean, timeoutMs: number, what: () => string) {
  return new Promise<void>((resolve, reject) => {
    const deadline = performance.now() + timeoutMs;
    const poll = () => {
      try {
        if (condition()) return resolve();
      } catch (error) {
        return reject(error);
      }
      if (performance.now() > deadline) return reject(new Error(`timed out: ${what()}`));
      setTimeout(poll, 1);
    };
    poll();
  });
}

/**
 * Opens `count` WatchUsers streams from `startRevision`, spread evenly over `connections` HTTP/2
 * connections (our server allows 256 streams per connection by default).
 */
export async function openWatchers(options: {
  url: string;
  count: number;
  connections: number;
  startRevision: bigint;
  /** Takes each message as it arrives instead of keeping it in `arrivals`. */
  onMessage?: (watcher: number, bytes: Uint8Array, at: number) => void;
  /** gRPC unless given. */
  protocol?: WatchProtocol;
}): Promise<WatcherPool> {
  const headers: http2.OutgoingHttpHeaders =
    options.protocol === "connect"
      ? { "content-type": "application/connect+proto", "connect-protocol-version": "1" }
      : { "content-type": "application/grpc", te: "trailers" };
  const request = grpcFrame(
    toBinary(
      WatchUsersRequestSchema,
      create(WatchUsersRequestSchema, { startRevision: options.startRevision }),
    ),
  );
  const sessions = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const session = http2.connect(options.url);
          session.once("connect", () => resolve(session));
          session.once("error", reject);
        }),
    ),
  );
  const streams: http2.ClientHttp2Stream[] = [];
  const watchers: Watcher[] = [];
  for (let i = 0; i < options.count; i++) {
    const session = sessions[i % sessions.length] as http2.ClientHttp2Session;
    const watcher: Watcher = { arrivals: [], messages: 0, eventMessages: 0, ended: undefined };
    const stream = session.request({
      ":method": "POST",
      ":path": userServicePath("WatchUsers"),
      ...headers,
    });
    let pending: Buffer = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer) => {
      const at = performance.now();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const length = pending.readUInt32BE(1);
        if (pending.length < 5 + length) break;
        const bytes = pending.subarray(5, 5 + length);
        if ((pending[0] ?? 0) & connectEndStreamFlag) {
          watcher.ended = `end of stream ${Buffer.from(bytes).toString()}`;
          pending = pending.subarray(5 + length);
          continue;
        }
        watcher.messages++;
        if (options.onMessage) options.onMessage(i, bytes, at);
        else watcher.arrivals.push({ at, bytes });
        if (length > heartbeatMaxBytes) watcher.eventMessages++;
        pending = pending.subarray(5 + length);
      }
    });
    stream.on("trailers", (trailers) => {
      watcher.ended = `grpc-status ${String(trailers["grpc-status"])} ${String(trailers["grpc-message"] ?? "")}`;
    });
    stream.on("error", (error: Error) => {
      watcher.ended ??= error.message;
    });
    stream.on("close", () => {
      watcher.ended ??= "closed";
    });
    stream.end(request);
    streams.push(stream);
    watchers.push(watcher);
  }
  const failed = () => watchers.find((watcher) => watcher.ended !== undefined)?.ended;
  return {
    watchers,
    allStarted: (timeoutMs) =>
      waitUntil(
        () => {
          const reason = failed();
          if (reason) throw new Error(`a watch stream ended early: ${reason}`);
          return watchers.every((watcher) => watcher.messages > 0);
        },
        timeoutMs,
        () =>
          `${watchers.filter((watcher) => watcher.messages > 0).length} of ${watchers.length} watch streams answered`,
      ),
    allReceived: (count, timeoutMs) =>
      waitUntil(
        () => watchers.every((watcher) => watcher.eventMessages >= count),
        timeoutMs,
        () =>
          `${watchers.filter((watcher) => watcher.eventMessages >= count).length} of ${watchers.length} watchers got change ${count}`,
      ),
    async close() {
      for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
      await Promise.all(
        sessions.map((session) => new Promise<void>((resolve) => session.close(() => resolve()))),
      );
    },
  };
}

/** The decoded messages of `watcher`, each with its arrival time. */
export function decodeArrivals(watcher: Watcher): { at: number; message: WatchUsersResponse }[] {
  return watcher.arrivals.map(({ at, bytes }) => ({
    at,
    message: fromBinary(WatchUsersResponseSchema, bytes),
  }));
}
