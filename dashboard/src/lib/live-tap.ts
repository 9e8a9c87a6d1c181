import type { Client } from "@connectrpc/connect";
import type { TapEvent, TapRequest, TapService } from "@shop/api/shop/mesh/v1/tap_service_pb";
import {
  connectingState,
  type ResilientStream,
  type StreamState,
  startResilientStream,
} from "./resilient-stream.ts";

/** Calls the page keeps, newest first; older ones leave the table. */
const rowLimit = 500;

/** A call as the tap page lists it. */
export interface TapRow {
  /** Unique in the page: the server and the order it came in. */
  key: string;
  event: TapEvent;
}

/** What the tap page renders. */
export interface TapView {
  /** Each tapped server's stream. */
  streams: Readonly<Record<string, StreamState>>;
  /** Newest first, at most rowLimit. */
  rows: readonly TapRow[];
  paused: boolean;
  /** Calls that came while paused, not shown until resumed. */
  held: number;
  /** Calls the servers dropped because the page fell behind, since the tap opened. */
  dropped: number;
}

/** The filters of a tap, as the request carries them (`payloads` always on for the page). */
export type TapFilters = Pick<
  TapRequest,
  "service" | "method" | "codes" | "slowerThanMs" | "caller"
>;

/** The live tap of several servers, in the shape `useSyncExternalStore` wants. */
export interface LiveTap {
  subscribe(listener: () => void): () => void;
  getSnapshot(): TapView;
  /** (Re)opens the taps of `servers` with `filters`, clearing the table. */
  open(servers: Readonly<Record<string, Client<typeof TapService>>>, filters: TapFilters): void;
  pause(): void;
  resume(): void;
  close(): void;
}

/**
 * The calls of several servers' taps in one table, newest first, each tap reconnecting with backoff
 * when it drops. Paused, the calls are held (up to the table's size) and shown on resume.
 */
export function createLiveTap(): LiveTap {
  const listeners = new Set<() => void>();
  let streams: Record<string, StreamState> = {};
  let running: ResilientStream[] = [];
  let rows: TapRow[] = [];
  let holding: TapRow[] = [];
  let paused = false;
  let dropped = 0;
  let counter = 0;
  let view = render();

  function render(): TapView {
    return { streams, rows, paused, held: holding.length, dropped };
  }
  function emit(): void {
    view = render();
    for (const listener of listeners) listener();
  }
  function take(server: string, events: readonly TapEvent[], lost: bigint): void {
    dropped += Number(lost);
    const fresh = events.map((event) => ({ key: `${server}-${counter++}`, event })).reverse();
    if (paused) holding = [...fresh, ...holding].slice(0, rowLimit);
    else rows = [...fresh, ...rows].slice(0, rowLimit);
    emit();
  }
  function closeAll(): void {
    for (const stream of running) stream.stop();
    running = [];
  }

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    getSnapshot: () => view,
    open(servers, filters) {
      closeAll();
      rows = [];
      holding = [];
      dropped = 0;
      streams = Object.fromEntries(Object.keys(servers).map((name) => [name, connectingState]));
      for (const [name, client] of Object.entries(servers)) {
        running.push(
          startResilientStream({
            async connect(signal, received) {
              const request = { ...filters, payloads: true };
              for await (const response of client.tap(request, { signal })) {
                received();
                if (response.events.length > 0 || response.dropped > 0n) {
                  take(name, response.events, response.dropped);
                }
              }
            },
            onState(state) {
              streams = { ...streams, [name]: state };
              emit();
            },
          }),
        );
      }
      emit();
    },
    pause() {
      paused = true;
      emit();
    },
    resume() {
      paused = false;
      rows = [...holding, ...rows].slice(0, rowLimit);
      holding = [];
      emit();
    },
    close: closeAll,
  };
}
